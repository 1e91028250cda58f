"""Official CycleGAN pretrained generators: download (atomic, size- and content-checked) and import into a pair.

`<base>/<name>.pth` with base http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models (override with
--base-url or $CGAN_PRETRAINED_URL) is downloaded into $CGAN_HOME/downloads/ through a temp file that is only
renamed after the body is complete (Content-Length), is a PyTorch file, loads with weights_only and infers to
the expected architecture (ResNet-9, ngf 64). The result is imported into $CGAN_HOME/pretrained/<pair name>/.
"""
from __future__ import annotations

import contextlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cgan._files import atomic_path, sha256_file
from cgan.errors import CganError, IntegrityError
from cgan.pairs import cgan_home
from cgan.spec import GeneratorSpec

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
OFFICIAL_SPEC = GeneratorSpec(blocks=9, ngf=64)

#: official file name -> (source domain, target domain)
OFFICIAL = {
    "summer2winter_yosemite": ("summer", "winter"), "winter2summer_yosemite": ("winter", "summer"),
    "horse2zebra": ("horse", "zebra"), "zebra2horse": ("zebra", "horse"),
    "monet2photo": ("monet", "photo"), "style_monet": ("photo", "monet"), "style_cezanne": ("photo", "cezanne"),
    "style_ukiyoe": ("photo", "ukiyoe"), "style_vangogh": ("photo", "vangogh"),
    "apple2orange": ("apple", "orange"), "orange2apple": ("orange", "apple"),
    "map2sat": ("map", "sat"), "sat2map": ("sat", "map"),
    "facades_label2photo": ("label", "facade"), "facades_photo2label": ("facade", "label"),
    "cityscapes_label2photo": ("label", "cityscape"), "cityscapes_photo2label": ("cityscape", "label"),
    "iphone2dslr_flower": ("iphone", "dslr"),
}
#: pair name -> (G file, F file): both directions as one pair
BOTH = {
    "summer2winter": ("summer2winter_yosemite", "winter2summer_yosemite"),
    "horse2zebra": ("horse2zebra", "zebra2horse"),
    "apple2orange": ("apple2orange", "orange2apple"),
    "map2sat": ("map2sat", "sat2map"),
    "monet2photo": ("monet2photo", "style_monet"),
    "facades": ("facades_label2photo", "facades_photo2label"),
    "cityscapes": ("cityscapes_label2photo", "cityscapes_photo2label"),
}
MAX_BYTES = 512 << 20


def valid_names() -> list[str]:
    return sorted(set(OFFICIAL) | set(BOTH))


def base_url(override: str | None = None) -> str:
    """Where the official generators are fetched from: --base-url, else $CGAN_PRETRAINED_URL, else the official
    server. An http(s):// or file:// URL, or a local folder (a mirror of the downloads)."""
    import urllib.parse

    env = os.environ.get("CGAN_PRETRAINED_URL")
    raw = override or env or DEFAULT_BASE_URL
    given = "--base-url" if override else "$CGAN_PRETRAINED_URL" if env else "the default URL"
    if "://" not in raw and Path(raw).expanduser().is_dir():
        raw = Path(raw).expanduser().resolve().as_uri()
    try:
        parts = urllib.parse.urlsplit(raw)
        parts.port  # noqa: B018 — raises ValueError on a port that is not a number
    except ValueError as e:
        raise CganError(f"{given} {raw!r} is not a URL ({e}): give http(s)://HOST/PATH, file:///FOLDER or a "
                        f"local folder") from None
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.hostname):
        raise CganError(f"{given} {raw!r} is not an http(s):// or file:// URL, nor an existing folder: give "
                        f"http(s)://HOST/PATH, file:///FOLDER or a local folder")
    return raw.rstrip("/")


def _fail(name: str, url: str, why: str) -> CganError:
    return CganError(f"cannot download pretrained {name!r} from {url}: {why}; check the network or --base-url "
                     f"(nothing was saved)")


def download(name: str, url_base: str | None = None, timeout: float = 60.0, progress: bool = True,
             expect: GeneratorSpec | None = OFFICIAL_SPEC) -> Path:
    """Download one official generator `<name>.pth` into $CGAN_HOME/downloads/ (reused when already valid)."""
    if name not in OFFICIAL:
        raise CganError(f"unknown pretrained model {name!r}: use one of {', '.join(valid_names())}")
    url = f"{base_url(url_base)}/{name}.pth"
    final = cgan_home() / "downloads" / f"{name}.pth"
    if final.is_file():
        try:
            validate(final, name, expect)
            return final
        except CganError:
            final.unlink()  # stale or foreign: fetch again
    from tqdm import tqdm

    tmp = None
    try:
        with atomic_path(final) as tmp:
            try:
                resp = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as e:
                raise _fail(name, url, f"HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise _fail(name, url, f"cannot read it ({reason})" if url.startswith("file:")
                            else f"no connection ({reason})") from None
            with resp:
                ctype = resp.headers.get("Content-Type", "")
                if not url.startswith("file:") and ("html" in ctype.lower() or "text/" in ctype.lower()):
                    raise _fail(name, url, f"the server sent a web page ({ctype}), not a .pth file")
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.isdecimal() else None
                if expected is not None and expected > MAX_BYTES:
                    raise _fail(name, url, f"file is {expected} bytes, too large for a CycleGAN generator")
                got = 0
                with open(tmp, "wb") as f, tqdm(total=expected, unit="B", unit_scale=True, desc=f"{name}.pth",
                                                disable=not progress, leave=False) as bar:
                    while True:
                        try:
                            block = resp.read(1 << 16)
                        except Exception as e:  # OSError, timeouts, http.client.IncompleteRead
                            raise _fail(name, url, f"connection lost after {got} bytes ({type(e).__name__})") from None
                        if not block:
                            break
                        got += len(block)
                        if got > MAX_BYTES:
                            raise _fail(name, url, "body larger than any CycleGAN generator")
                        f.write(block)
                        bar.update(len(block))
            if expected is not None and got != expected:
                raise _fail(name, url, f"truncated download: got {got} of {expected} bytes")
            validate(tmp, name, expect, url)
    except IntegrityError as e:
        why = str(e) if tmp is None else str(e).replace(str(tmp), f"{name}.pth")  # not the hidden temp file's name
        raise CganError(f"downloaded {name}.pth is not a usable generator ({why}); nothing was saved") from None
    return final


def validate(path: Path, name: str, expect: GeneratorSpec | None, url: str | None = None) -> GeneratorSpec:
    """The file is a PyTorch checkpoint that loads with weights_only into the expected architecture."""
    from cgan.trainer.weights import official_to_generator, read_official

    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] != b"PK" and head[:1] != b"\x80":
        kind = "an HTML page" if b"<html" in head.lower() or b"<!doctype" in head.lower() else "not a PyTorch file"
        raise IntegrityError(f"{name}.pth from {url or path} is {kind}")
    spec, _ = official_to_generator(read_official(path), f"{name}.pth")
    if expect is not None and (spec.blocks, spec.ngf, spec.in_channels) != (expect.blocks, expect.ngf,
                                                                            expect.in_channels):
        raise IntegrityError(f"{name}.pth is a ResNet-{spec.blocks} ngf {spec.ngf} generator, expected the official "
                             f"ResNet-{expect.blocks} ngf {expect.ngf}")
    return spec


def fetch_pair(name: str, url_base: str | None = None, progress: bool = True,
               expect: GeneratorSpec | None = OFFICIAL_SPEC) -> tuple[Path, dict[str, Any]]:
    """Download and import `name` (an official file name, or a BOTH name) into $CGAN_HOME/pretrained/<name>/.

    Returns (pair folder, download records {gen: {"name", "url", "sha256", "bytes"}})."""
    from cgan.trainer.weights import import_official

    if name in BOTH:
        g_name, f_name = BOTH[name]
        files = {"G": g_name, "F": f_name}
        dom_x, dom_y = OFFICIAL[g_name]
    elif name in OFFICIAL:
        files = {"G": name}
        dom_x, dom_y = OFFICIAL[name]
    else:
        raise CganError(f"unknown pretrained model {name!r}: use one of {', '.join(valid_names())}")
    paths, records = {}, {}
    for gen, official in files.items():
        p = download(official, url_base, progress=progress, expect=expect)
        paths[gen] = p
        records[gen] = {"name": official, "url": f"{base_url(url_base)}/{official}.pth",
                        "sha256": sha256_file(p), "bytes": p.stat().st_size}
    folder = cgan_home() / "pretrained" / name
    with contextlib.suppress(FileNotFoundError):
        (folder / "pair.json").unlink()  # a reader never sees an old pair.json over new weights
    import_official(paths["G"], paths.get("F"), folder, dom_x, dom_y,
                    provenance={"source": "official-pretrained", "pretrained": name, "downloads": records})
    return folder, records
