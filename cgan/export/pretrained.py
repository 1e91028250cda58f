"""Official CycleGAN pretrained generators: download (atomic, size- and content-checked) and import into a pair.

`<base>/<name>.pth` with base http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models (override with
--base-url or $CGAN_PRETRAINED_URL) is downloaded into $CGAN_HOME/downloads/ through a temp file that is only
renamed after the body is complete (Content-Length), is a PyTorch file, loads with weights_only and infers to
the expected architecture (ResNet-9, ngf 64). The result is imported into $CGAN_HOME/pretrained/<pair name>/.

A download is bounded: DEADLINE_S in all (connection, redirects, headers and body) and no slower than MIN_RATE
averaged over RATE_WINDOW_S, so a stalled server cannot hold the download's lock forever. Redirects are followed
to http(s) only, never from https down to http. Each cached file has a record in $CGAN_HOME/download-records/
(the URL asked for, the URL fetched after redirects, sha256, bytes): it is reused only for the same URL and while
its sha256 matches. Messages and records show URLs without credentials (`user:password@`, token-like query
values); credentials in the URL are sent as HTTP Basic auth, to that host only.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from cgan._files import _umask, atomic_path, read_json, remove_stale_temps, sha256_file, write_json_atomic
from cgan._urls import redact_url, url_secrets
from cgan.errors import CganError, IntegrityError
from cgan.pairs import cgan_home
from cgan.spec import GeneratorSpec

log = logging.getLogger(__name__)

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
#: one file, from connecting to its last byte (redirects and headers included): the official files (ResNet-9,
#: ngf 64, float32: about 45 MB) take ~74 minutes at MIN_RATE, so any download the rate lets go on can end (at
#: 30 minutes, those under ~25 KB/s on average were cut off after most of the file had come). A server that drips
#: is refused by MIN_RATE. `download(deadline=...)` / `fetch_pair(deadline=...)` (or, for an export,
#: extra={"pretrained": {"deadline": ...}}) sets another.
DEADLINE_S = 90 * 60.0
#: bytes per second, averaged over the last RATE_WINDOW_S seconds: a server dripping the body is refused
MIN_RATE = 10 << 10
RATE_WINDOW_S = 30.0
#: a temp file this old is a killed download's, removed even when the download lock cannot be taken
STALE_TMP_S = 15 * 60.0
#: $CGAN_HOME/<RECORDS>/<name>.json: where each cached download came from, and its sha256
RECORDS = "download-records"


def valid_names() -> list[str]:
    return sorted(set(OFFICIAL) | set(BOTH))


def base_url(override: str | None = None) -> str:
    """Where the official generators are fetched from: --base-url, else $CGAN_PRETRAINED_URL, else the official
    server. An http(s):// or file:// URL, or a local folder (a mirror of the downloads)."""
    env = os.environ.get("CGAN_PRETRAINED_URL")
    raw = override or env or DEFAULT_BASE_URL
    given = "--base-url" if override else "$CGAN_PRETRAINED_URL" if env else "the default URL"
    if "://" not in raw and Path(raw).expanduser().is_dir():
        raw = Path(raw).expanduser().resolve().as_uri()
    try:
        parts = urllib.parse.urlsplit(raw)
        parts.port  # noqa: B018 — raises ValueError on a port that is not a number
    except ValueError as e:
        # the parser's words may quote part of a password (user:pa/ss@host reads as port 'pa')
        why = "a password with / ? # or @ must be %-encoded" if "@" in raw else str(e)
        raise CganError(f"{given} {redact(raw)!r} is not a URL ({why}): give http(s)://HOST/PATH, file:///FOLDER "
                        f"or a local folder") from None
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.hostname):
        raise CganError(f"{given} {redact(raw)!r} is not an http(s):// or file:// URL, nor an existing folder: give "
                        f"http(s)://HOST/PATH, file:///FOLDER or a local folder")
    return raw.rstrip("/")


def file_url(base: str, name: str) -> str:
    """`<base>/<name>.pth`, keeping a query of the base (`?token=...`) after the file name."""
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}.pth", fragment=""))


# ---- credentials never shown ------------------------------------------------------------------------------------
#: how messages and records show a URL: `user:***@`, `***@` for a token as the user name, token-like query
#: values `***`; url_secrets lists what that hides, to scrub it from messages other libraries wrote (cgan._urls,
#: which the video runtime uses for stream URLs too)
redact = redact_url


def _scrub(text: str, secrets: set[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def _basic_auth(url: str) -> tuple[str, str | None]:
    """(url without `user:password@`, the HTTP Basic Authorization value for them or None). urllib itself would
    take `user:password@host` for the host name."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=hostport)), f"Basic {token}"


# ---- one bounded HTTP(S) fetch ----------------------------------------------------------------------------------
def _origin(url: str) -> tuple[str, str | None, int | None]:
    p = urllib.parse.urlsplit(url)
    return p.scheme.lower(), p.hostname, p.port or {"http": 80, "https": 443}.get(p.scheme.lower())


class _Refused(Exception):
    """A redirect that is not followed; the message says where it went and why."""


class _Redirects(urllib.request.HTTPRedirectHandler):
    """http(s) redirects only, never https -> http; credentials follow to the same scheme, host and port only."""

    def __init__(self, auth: str | None, secrets: set[str]):
        super().__init__()
        self.auth, self.secrets = auth, secrets

    def http_error_302(self, req, fp, code, msg, headers):  # noqa: ANN001 — urllib's signature
        loc = headers.get("location") or headers.get("uri")
        if loc:  # before urllib's own check, which lets ftp:// through
            new = urllib.parse.urljoin(req.full_url, loc)
            self.secrets |= url_secrets(new)
            scheme = new.partition("://")[0].lower() if "://" in new else ""
            why = None
            if scheme not in ("http", "https"):
                why = f"the server redirected to {redact(new)}: only http(s) redirects are followed"
            elif _origin(req.full_url)[0] == "https" and scheme == "http":
                why = f"the server redirected from https to plain http ({redact(new)}): a downgrade is refused"
            if why:
                fp.close()
                raise _Refused(why)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            if _origin(new.full_url) == _origin(req.full_url):
                if self.auth:  # sent unredirected: urllib copies it to no other request
                    new.add_unredirected_header("Authorization", self.auth)
            else:
                log.info("%s redirects to another host: %s", redact(req.full_url), redact(new.full_url))
        return new


class _Deadline:
    """The whole download's time limit. A timer shuts down every socket the download opened when it passes: a
    server that drips the headers or the body one byte per second cannot keep the read going (per-read timeouts
    never fire on it)."""

    def __init__(self, seconds: float):
        self.seconds, self.end, self.expired = seconds, time.monotonic() + seconds, False
        self._socks: list[socket.socket] = []
        self._guard = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()
        with self._guard:
            socks, self._socks = self._socks, []
        for s in socks:
            s.close()

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.end

    def track(self, sock: socket.socket) -> socket.socket:
        dup = sock.dup()  # a second handle on the same connection: shut down, it wakes a read blocked on the first
        with self._guard:
            self._socks.append(dup)
            expired = self.expired
        if expired:
            _shut(dup)
        return sock

    def _expire(self) -> None:
        with self._guard:
            self.expired = True
            socks = list(self._socks)
        for s in socks:
            _shut(s)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Tracked:
    """urllib's HTTP(S) handler, handing every socket it opens to a `_Deadline`."""

    deadline: _Deadline

    def do_open(self, http_class, req, **kwargs):  # noqa: ANN001 — urllib's signature
        deadline = self.deadline

        def connection(host, **kw):  # noqa: ANN001
            conn = http_class(host, **kw)
            create = getattr(conn, "_create_connection", None)
            if create is not None:  # without it (another http.client), the read loop still checks the deadline
                conn._create_connection = lambda *a, **k: deadline.track(create(*a, **k))
            return conn

        return super().do_open(connection, req, **kwargs)


class _HTTP(_Tracked, urllib.request.HTTPHandler):
    pass


class _HTTPS(_Tracked, urllib.request.HTTPSHandler):
    pass


def _opener(deadline: _Deadline, auth: str | None, secrets: set[str]) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [_HTTP(), _HTTPS(), _Redirects(auth, secrets)]
    for h in handlers[:2]:
        h.deadline = deadline
    return urllib.request.build_opener(*handlers)


def _fail(name: str, url: str, why: str) -> CganError:
    return CganError(f"cannot download pretrained {name!r} from {url}: {why}; check the network or --base-url "
                     f"(nothing was saved)")


def _fetch(name: str, url: str, tmp: Path, timeout: float, progress: bool, seconds: float,
           secrets: set[str]) -> str:
    """Write the body at `url` into `tmp`, whole (Content-Length), within `seconds` and at MIN_RATE or faster;
    return the URL fetched after redirects."""
    from tqdm import tqdm

    shown = redact(url)
    plain, auth = _basic_auth(url)
    req = urllib.request.Request(plain)
    if auth:
        req.add_unredirected_header("Authorization", auth)
    too_long = f"not complete after {seconds:g} s (a stalled or very slow server)"
    with _Deadline(seconds) as deadline:
        try:
            try:
                resp = _opener(deadline, auth, secrets).open(req, timeout=timeout)
            except _Refused as e:
                raise _fail(name, shown, str(e)) from None
            except urllib.error.HTTPError as e:
                e.close()
                raise _fail(name, shown, f"HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
                reason = getattr(e, "reason", e)
                raise _fail(name, shown, f"cannot read it ({reason})" if plain.startswith("file:")
                            else f"no connection ({reason or type(e).__name__})") from None
            with resp:
                fetched = resp.geturl() or plain
                ctype = resp.headers.get("Content-Type", "")
                if not fetched.startswith("file:") and ("html" in ctype.lower() or "text/" in ctype.lower()):
                    raise _fail(name, shown, f"the server sent a web page ({ctype}), not a .pth file")
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.isdecimal() else None
                if expected is not None and expected > MAX_BYTES:
                    raise _fail(name, shown, f"file is {expected} bytes, too large for a CycleGAN generator")
                read = getattr(resp, "read1", resp.read)  # read1: what has arrived, so the checks below run often
                got = 0
                recent = collections.deque([(time.monotonic(), 0)])  # (time, bytes so far) over RATE_WINDOW_S
                # (disable None: no bar when stderr is not a terminal, where its \r fragments ran into the log lines)
                with open(tmp, "wb") as f, tqdm(total=expected, unit="B", unit_scale=True, desc=f"{name}.pth",
                                                disable=None if progress else True, leave=False) as bar:
                    while True:
                        try:
                            block = read(1 << 16)
                        except Exception as e:  # OSError, timeouts, http.client.IncompleteRead
                            why = f"connection lost after {got} bytes ({type(e).__name__})"
                            raise _fail(name, shown, why) from None
                        if deadline.passed():
                            raise _fail(name, shown, too_long)
                        if not block:
                            break
                        got += len(block)
                        if got > MAX_BYTES:
                            raise _fail(name, shown, "body larger than any CycleGAN generator")
                        f.write(block)
                        bar.update(len(block))
                        now = time.monotonic()
                        recent.append((now, got))
                        while len(recent) > 1 and recent[1][0] <= now - RATE_WINDOW_S:
                            recent.popleft()
                        t0, got0 = recent[0]
                        rate = (got - got0) / max(now - t0, 1e-9)
                        if now - t0 >= RATE_WINDOW_S and rate < MIN_RATE:
                            raise _fail(name, shown, f"too slow: {rate / 1024:.2f} KB/s over the last {now - t0:.3g} "
                                                     f"s, under the minimum of {MIN_RATE / 1024:g} KB/s")
            if expected is not None and got != expected:
                raise _fail(name, shown, f"truncated download: got {got} of {expected} bytes")
            return fetched
        except CganError:
            if deadline.expired:  # the sockets were shut: whatever broke, the deadline is why
                raise _fail(name, shown, too_long) from None
            raise


# ---- the cache: downloads/<name>.pth and its record ------------------------------------------------------------
@contextlib.contextmanager
def _download_lock(name: str) -> Iterator[None]:
    """One writer of downloads/<name>.pth at a time (reentrant in a thread). Under it, temp files left by a
    download that was killed are removed; without a lock (a file system without locks), those older than
    STALE_TMP_S only."""
    from cgan._locks import folder_lock

    home = cgan_home()
    final = home / "downloads" / f"{name}.pth"
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(folder_lock(final, f"another cgan process is downloading {final.name}; waiting "
                                                  f"for it to finish"))
            age = 0.0
        except (CganError, NotImplementedError, OSError) as e:
            log.debug("no lock for %s (%s): removing only temp files older than %.0f s", final, e, STALE_TMP_S)
            age = STALE_TMP_S
        for folder, stem in ((final.parent, final.name), (home / RECORDS, f"{name}.json")):
            # atomic_path's temp names; official names hold no glob chars
            remove_stale_temps(folder.glob(f".{stem}.*.tmp"), age, "a download that was stopped", log)
        yield


def _cached(name: str, requested: str, expect: GeneratorSpec | None) -> dict[str, Any] | None:
    """The record of downloads/<name>.pth when it was fetched from `requested` (redacted) and is unchanged since
    (size, sha256) and still valid; else None, and the file and its record are removed."""
    final = cgan_home() / "downloads" / f"{name}.pth"
    record = cgan_home() / RECORDS / f"{name}.json"
    if final.is_file() and record.is_file():
        try:
            rec = read_json(record, "download record", max_bytes=1 << 16)
            if (isinstance(rec, dict) and rec.get("name") == name and rec.get("requested_url") == requested
                    and isinstance(rec.get("url"), str) and rec.get("bytes") == final.stat().st_size
                    and rec.get("sha256") == sha256_file(final)):
                validate(final, name, expect, rec["url"])
                return {k: rec[k] for k in ("name", "url", "requested_url", "sha256", "bytes")}
        except CganError:
            pass
    if record.is_file():  # stale, foreign or from another source: fetch again
        for p in (record, final):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    # a file without a record (an older cgan's cache, or one put there by hand) is not trusted as this URL's,
    # but not deleted either: a download replaces it only once a new file is complete (offline, it stays; pass
    # --base-url FOLDER to import a local .pth)
    return None


def _local_source_changed(url: str, rec: dict[str, Any]) -> bool:
    """Whether a file:// source (a local folder or mirror) now holds another file than the cached copy was made
    from: replaced weights were never fetched again, --force or not, and the export's manifest named the local
    file with a sha256 it no longer had. A source that is gone (offline) keeps the cache."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        return False
    source = Path(urllib.request.url2pathname(parts.path))
    try:
        if not source.is_file():
            return False
        return source.stat().st_size != rec.get("bytes") or sha256_file(source) != rec.get("sha256")
    except OSError:
        return False


def download(name: str, url_base: str | None = None, timeout: float = 60.0, progress: bool = True,
             expect: GeneratorSpec | None = OFFICIAL_SPEC, deadline: float | None = None) -> Path:
    """Download one official generator `<name>.pth` into $CGAN_HOME/downloads/ (reused when already valid and
    fetched from the same URL). `timeout` bounds each read, `deadline` (default DEADLINE_S) the whole file."""
    return _download(name, url_base, timeout, progress, expect, deadline)[0]


def _download(name: str, url_base: str | None = None, timeout: float = 60.0, progress: bool = True,
              expect: GeneratorSpec | None = OFFICIAL_SPEC,
              deadline: float | None = None) -> tuple[Path, dict[str, Any]]:
    """download(), and its record {"name", "url" (fetched, after redirects), "requested_url", "sha256", "bytes"},
    URLs redacted."""
    if name not in OFFICIAL:
        raise CganError(f"unknown pretrained model {name!r}: use one of {', '.join(valid_names())}")
    url = file_url(base_url(url_base), name)
    secrets = url_secrets(url)  # the redirect handler adds those of the URLs it is sent to
    try:
        return _download_locked(name, url, timeout, progress, expect,
                                DEADLINE_S if deadline is None else deadline, secrets)
    except CganError as e:
        scrubbed = _scrub(str(e), secrets)
        if scrubbed == str(e):
            raise
        raise type(e)(scrubbed) from None


def _download_locked(name: str, url: str, timeout: float, progress: bool, expect: GeneratorSpec | None,
                     seconds: float, secrets: set[str]) -> tuple[Path, dict[str, Any]]:
    final = cgan_home() / "downloads" / f"{name}.pth"
    requested = redact(url)
    with _download_lock(name):
        rec = _cached(name, requested, expect)
        if rec is not None and not _local_source_changed(url, rec):
            return final, rec
        tmp = None
        try:
            with atomic_path(final) as tmp:
                fetched = redact(_fetch(name, url, tmp, timeout, progress, seconds, secrets))
                validate(tmp, name, expect, fetched)
                rec = {"name": name, "url": fetched, "requested_url": requested, "sha256": sha256_file(tmp),
                       "bytes": tmp.stat().st_size}
        except IntegrityError as e:
            why = str(e) if tmp is None else str(e).replace(str(tmp), f"{name}.pth")  # not the hidden temp file's name
            raise CganError(f"downloaded {name}.pth is not a usable generator ({why}); nothing was saved") from None
        # after the file: killed in between, the file has no matching record and is fetched again
        write_json_atomic(cgan_home() / RECORDS / f"{name}.json", rec)
        return final, rec


def _arch(spec: GeneratorSpec) -> str:
    """What the architecture check compares (the input channels too: a gray model's message named only blocks and
    ngf, the same as expected)."""
    return f"ResNet-{spec.blocks} ngf {spec.ngf} generator of {spec.in_channels} input channel" + \
        ("s" if spec.in_channels != 1 else "")


def validate(path: Path, name: str, expect: GeneratorSpec | None, url: str | None = None) -> GeneratorSpec:
    """The file is a PyTorch checkpoint that loads with weights_only into the expected architecture."""
    from cgan.trainer.weights import official_to_generator, read_official

    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] != b"PK" and head[:1] != b"\x80":
        kind = "an HTML page" if b"<html" in head.lower() or b"<!doctype" in head.lower() else "not a PyTorch file"
        raise IntegrityError(f"{name}.pth from {url or path} is {kind}")
    def official(spec: GeneratorSpec) -> None:  # before the network is built (a hostile file's may be huge)
        if expect is not None and (spec.blocks, spec.ngf, spec.in_channels) != (expect.blocks, expect.ngf,
                                                                                expect.in_channels):
            raise IntegrityError(f"{name}.pth is a {_arch(spec)}, expected the official {_arch(expect)}")

    spec, _ = official_to_generator(read_official(path), f"{name}.pth", check=official,
                                    not_finite_advice="not the official file: check the source (--base-url or "
                                                      "$CGAN_PRETRAINED_URL)")
    return spec


def fetch_pair(name: str, url_base: str | None = None, progress: bool = True,
               expect: GeneratorSpec | None = OFFICIAL_SPEC,
               deadline: float | None = None) -> tuple[Path, dict[str, Any]]:
    """Download and import `name` (an official file name, or a BOTH name) into $CGAN_HOME/pretrained/<name>/.

    Returns (pair folder, download records {gen: {"name", "url" (fetched, after redirects), "requested_url",
    "sha256", "bytes"}}), URLs without credentials."""
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
    with contextlib.ExitStack() as held:
        # the downloads stay locked until imported: the records' sha256 are those of the files imported
        for official in sorted(set(files.values())):
            held.enter_context(_download_lock(official))
        for gen, official in files.items():
            paths[gen], records[gen] = _download(official, url_base, progress=progress, expect=expect,
                                                 deadline=deadline)
        # (import-official's message followed, which names its own --direction)
        if len(paths) == 2 and records["G"]["sha256"] == records["F"]["sha256"]:
            raise IntegrityError(f"the downloads {files['G']}.pth and {files['F']}.pth are the same file, and the "
                                 f"two directions must differ: check the source (--base-url or "
                                 f"$CGAN_PRETRAINED_URL; a mirror serving one file under both names?)")
        folder = cgan_home() / "pretrained" / name
        folder.parent.mkdir(parents=True, exist_ok=True)
        olds = sorted(folder.parent.glob(f".{name}.old-*"))
        if olds and not folder.exists():  # killed between the two renames below: the installed pair is put back
            os.replace(olds.pop(), folder)
        for left in [*folder.parent.glob(f".{name}.staging-*"), *olds]:
            shutil.rmtree(left, ignore_errors=True)  # a killed import's (this name's imports are locked above)
        # imported beside it, then swapped in: an import that fails (two generators of different architectures,
        # Ctrl-C, a full disk) left the installed pair without its pair.json, and the name quietly found the
        # embedded pair instead
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=folder.parent))
        os.chmod(stage, 0o777 & ~_umask())  # (mkdtemp's 0700 made the swapped-in pair private to this user)
        try:
            import_official(paths["G"], paths.get("F"), stage, dom_x, dom_y,
                            provenance={"source": "official-pretrained", "pretrained": name, "downloads": records})
            old = folder.with_name(f".{name}.old-{stage.name.rsplit('-', 1)[-1]}")
            if folder.exists():
                os.replace(folder, old)
            os.replace(stage, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return folder, records
