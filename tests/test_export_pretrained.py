"""--pretrained downloads against a local HTTP server: good file, 404, HTML page, truncated, refused, wrong arch."""
from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from _helpers_export import TINY, official_bytes
from cgan.errors import CganError
from cgan.export import export_pair
from cgan.export import pretrained as P
from cgan.pairs import cgan_home, load_pair

GOOD = {"horse2zebra": official_bytes(1), "zebra2horse": official_bytes(2)}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        name = name.removesuffix(".pth")
        body = GOOD.get(name, b"")
        if mode == "good" and body:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "html":
            page = b"<!DOCTYPE html><html><body>Service unavailable</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif mode == "trunc" and body:  # promises the whole file, sends half, closes the connection
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif mode == "garbage":
            data = b"\x00not a checkpoint" * 100
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _nothing_cached():
    d = cgan_home() / "downloads"
    return not d.exists() or not list(d.iterdir())


def test_good_download_both_directions_and_export(server, tmp_path):
    out = export_pair(None, pretrained="horse2zebra", base_url=f"{server}/good", fp16=False,
                      parity_sizes=((32, 32),), extra={"pretrained": {"expect": TINY, "progress": False}})
    assert out == cgan_home() / "exports" / "horse2zebra"  # no --out: installed where --pair horse2zebra looks
    m = json.loads((out / "manifest.json").read_text())
    dl = m["source"]["pretrained"]["downloads"]
    assert m["name"] == "horse2zebra" and set(dl) == {"G", "F"}
    assert dl["G"]["name"] == "horse2zebra" and dl["F"]["name"] == "zebra2horse"
    import hashlib
    assert dl["G"]["sha256"] == hashlib.sha256(GOOD["horse2zebra"]).hexdigest()
    pair = load_pair(cgan_home() / "pretrained" / "horse2zebra")
    assert pair.spec.generator == TINY and pair.generators == ("G", "F")
    assert sorted(p.name for p in (cgan_home() / "downloads").iterdir()) == ["horse2zebra.pth", "zebra2horse.pth"]


@pytest.mark.parametrize("mode,match", [("missing", "HTTP 404"), ("html", "web page"),
                                         ("trunc", "truncated|connection lost"), ("garbage", "not a PyTorch file")])
def test_download_failures_leave_nothing(server, mode, match):
    with pytest.raises(CganError, match=match):
        P.download("horse2zebra", f"{server}/{mode}", progress=False, expect=TINY)
    assert _nothing_cached()


def test_wrong_architecture_and_refused_connection(server, monkeypatch):
    import cgan.trainer.weights as weights

    def never(*a, **k):  # a download's architecture is checked before its network is built (a hostile file's
        raise AssertionError("built")  # may be huge: 2.6 GB before the refusal)

    with monkeypatch.context() as m, pytest.raises(CganError, match="expected the official ResNet-9 ngf 64"):
        m.setattr(weights, "build_generator", never)
        P.download("horse2zebra", f"{server}/good", progress=False)  # tiny file is not the official architecture
    assert _nothing_cached()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("CGAN_PRETRAINED_URL", f"http://127.0.0.1:{port}/x")
    with pytest.raises(CganError, match="no connection"):
        P.download("horse2zebra", progress=False, timeout=5)
    assert _nothing_cached()


def test_unknown_name_lists_valid_ones():
    with pytest.raises(CganError, match="summer2winter_yosemite") as e:
        P.fetch_pair("horse2cat")
    assert "style_monet" in str(e.value) and "horse2cat" in str(e.value)
    assert P.base_url(None) == P.DEFAULT_BASE_URL


def test_pretrained_import_and_export_hold_the_pretrained_lock(server, tmp_path, monkeypatch):
    """Every fetch rewrites $CGAN_HOME/pretrained/NAME (pair.json first): two concurrent `--pretrained NAME`
    exports must not interleave there (the second removed pair.json while the first copied it). The fetch and
    the copy run under a lock on that folder: another holder cannot take it meanwhile."""
    from filelock import FileLock, Timeout

    from cgan._locks import lock_file
    from cgan.export import api

    lock_path = lock_file(cgan_home() / "pretrained" / "horse2zebra")
    seen = []
    real_fetch, real_export_to = P.fetch_pair, api._export_to

    def held() -> bool:
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0.05)
        except Timeout:
            return True
        lock.release()
        return False

    def fetch(*a, **k):
        seen.append(("fetch", held()))
        return real_fetch(*a, **k)

    def export_to(*a, **k):
        seen.append(("copy", held()))
        return real_export_to(*a, **k)

    monkeypatch.setattr(P, "fetch_pair", fetch)
    monkeypatch.setattr(api, "_export_to", export_to)
    export_pair(None, tmp_path / "out", pretrained="horse2zebra", base_url=f"{server}/good", fp16=False,
                parity=False, extra={"pretrained": {"expect": TINY, "progress": False}})
    assert seen == [("fetch", True), ("copy", True)]
    assert not held()  # released at the end


@pytest.mark.parametrize("url", ["notaurl", "/no/such/folder", "http://[::1", "http://host:port/x", "ftp://h/x",
                                 "https:///x"])
def test_a_malformed_base_url_is_one_line(url, monkeypatch):
    """--base-url / $CGAN_PRETRAINED_URL that is not a URL was a ValueError traceback from urllib."""
    for how in ("option", "env"):
        if how == "env":
            monkeypatch.setenv("CGAN_PRETRAINED_URL", url)
        with pytest.raises(CganError, match="--base-url|CGAN_PRETRAINED_URL") as e:
            P.download("horse2zebra", url if how == "option" else None, progress=False, expect=TINY)
        assert "http(s)://HOST/PATH" in str(e.value) and "\n" not in str(e.value)
    assert _nothing_cached()


def test_a_local_mirror_folder_or_file_url_works(tmp_path):
    """A folder holding the .pth files (or its file:// URL) serves as --base-url; a file:// .pth is not refused
    as 'a web page' (urllib guesses text/plain for it)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "horse2zebra.pth").write_bytes(GOOD["horse2zebra"])
    assert P.download("horse2zebra", str(mirror), progress=False, expect=TINY).is_file()
    (cgan_home() / "downloads" / "horse2zebra.pth").unlink()
    assert P.download("horse2zebra", mirror.as_uri(), progress=False, expect=TINY).is_file()
    (cgan_home() / "downloads" / "horse2zebra.pth").unlink()
    with pytest.raises(CganError, match="cannot read it"):
        P.download("horse2zebra", (tmp_path / "empty").as_uri(), progress=False, expect=TINY)


def test_a_local_source_replaced_is_fetched_again(tmp_path):
    """The cache hashed only its own copy: a .pth replaced in the --base-url folder was never fetched again
    (--force or not), and the export's manifest named the local file with a sha256 it no longer had."""
    import hashlib

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "horse2zebra.pth").write_bytes(GOOD["horse2zebra"])
    cached = P.download("horse2zebra", str(mirror), progress=False, expect=TINY)
    assert cached.read_bytes() == GOOD["horse2zebra"]
    (mirror / "horse2zebra.pth").write_bytes(GOOD["zebra2horse"])  # other weights under the same name
    path, rec = P._download("horse2zebra", str(mirror), progress=False, expect=TINY)
    assert path.read_bytes() == GOOD["zebra2horse"] and rec["sha256"] == hashlib.sha256(GOOD["zebra2horse"]).hexdigest()
    (mirror / "horse2zebra.pth").unlink()  # the source gone (a mirror unmounted): the cache still serves
    assert P.download("horse2zebra", str(mirror), progress=False, expect=TINY).read_bytes() == GOOD["zebra2horse"]


def test_a_failed_re_fetch_keeps_the_installed_pair(tmp_path):
    """fetch_pair removed the installed pair's pair.json before importing: an import that then failed (here the
    two files are of different architectures) left pretrained/NAME without it, and the name quietly resolved
    to the embedded pair. The import is staged and swapped in; a failure leaves the installed pair as it was."""
    from dataclasses import replace

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in ("horse2zebra", "zebra2horse"):
        (mirror / f"{name}.pth").write_bytes(GOOD[name])
    folder, _ = P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=None)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (mirror / "zebra2horse.pth").write_bytes(official_bytes(3, replace(TINY, ngf=TINY.ngf * 2)))
    with pytest.raises(CganError, match="different architectures"):
        P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=None)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["horse2zebra"]  # no staging left
    (mirror / "zebra2horse.pth").write_bytes(official_bytes(4))  # a good re-fetch replaces it
    P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=None)
    assert load_pair(folder).generators == ("G", "F") and sorted(p.name for p in folder.parent.iterdir()) == [
        "horse2zebra"]
    import os
    import stat

    mask = os.umask(0o022)  # (a umask of 077 could not tell the umask's mode from mkdtemp's 0700)
    try:
        P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=None)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755  # not mkdtemp's 0700
    # killed between the two renames: the next fetch puts the installed pair back before anything else
    os.replace(folder, folder.with_name(".horse2zebra.old-abc"))
    (mirror / "zebra2horse.pth").write_bytes(official_bytes(3, replace(TINY, ngf=TINY.ngf * 2)))
    with pytest.raises(CganError, match="different architectures"):
        P.fetch_pair("horse2zebra", str(mirror), progress=False, expect=None)
    assert load_pair(folder).generators == ("G", "F") and sorted(p.name for p in folder.parent.iterdir()) == [
        "horse2zebra"]


def test_pth_files_are_not_unpickled_with_a_torch_whose_safe_loader_is_unsafe(tmp_path, monkeypatch):
    """torch <= 2.5.1 could run code from a crafted file even with weights_only=True (CVE-2025-32434)."""
    import torch

    from cgan.errors import CganError
    from cgan.trainer import weights

    f = tmp_path / "x.pth"
    torch.save({"a": torch.zeros(1)}, f)
    with pytest.raises(CganError, match=r"torch 2\.5\.1\+cu121 can be made to run code.*torch>=2\.6"):
        weights.check_safe_torch_load("2.5.1+cu121")
    weights.check_safe_torch_load("2.6.0")
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    called = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: called.append(a))
    with pytest.raises(CganError, match="CVE-2025-32434"):
        weights.load_plain(f, "checkpoint", "")
    assert not called


def test_the_download_bar_stays_out_of_logs(tmp_path, capsys):
    """The download's progress bar wrote \\r fragments to stderr when it was a log file, and the error line then
    began on the bar's line. Off when stderr is not a terminal (pytest's capture is not one)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "horse2zebra.pth").write_bytes(GOOD["horse2zebra"])
    P.download("horse2zebra", str(mirror), progress=True, expect=TINY)
    assert "\r" not in capsys.readouterr().err
