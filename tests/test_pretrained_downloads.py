"""--pretrained downloads against hostile or careless servers (a local HTTP server): the cache is keyed on the URL,
a stalled server is cut off, a killed download's temp files are removed, redirects stay on http(s), and no
message or record shows a password or token."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from _helpers_export import TINY, official_bytes
from cgan.errors import CganError
from cgan.export import pretrained as P
from cgan.pairs import cgan_home

NAME = "zebra2horse"  # an official name that is a one-direction pair on its own
BODY = {"a": official_bytes(11), "b": official_bytes(12)}  # the official server's file, a mirror's other weights
AUTH = "Basic " + __import__("base64").b64encode(b"user:s3cret").decode()
DRIP_S = 3.0  # a dripping server gives up after this long: a download that waits for it takes at least this


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        path, _, _query = self.path.partition("?")
        mode = path.strip("/").split("/")[0]
        self.server.hits.append((path, self.headers.get("Host"), self.headers.get("Authorization")))
        port = self.server.server_address[1]
        if mode in BODY:
            self._send(BODY[mode])
        elif mode == "auth":
            if self.headers.get("Authorization") == AUTH:
                self._send(BODY["a"])
            else:
                self.send_error(401)
        elif mode in ("redir", "ftp", "file", "otherhost"):
            self.send_response(302)
            self.send_header("Location", {
                "redir": f"/a/{NAME}.pth?X-Amz-Signature=SIGSECRET&X-Amz-Expires=60",
                "ftp": "ftp://127.0.0.1:1/x.pth", "file": "file:///etc/hostname",
                "otherhost": f"http://localhost:{port}/a/{NAME}.pth"}[mode])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "dripbody":  # honest headers, then one byte at a time
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(BODY["a"]))
            self._drip(BODY["a"])
        elif mode == "driphead":  # the status line and headers themselves one byte at a time
            self._drip(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nX-Pad: " + b"x" * 10_000)
        else:
            self.send_error(404)

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, data: bytes):
        t0 = time.monotonic()
        try:
            for i in range(len(data)):
                if time.monotonic() - t0 > DRIP_S:
                    break
                self.wfile.write(data[i:i + 1])
                time.sleep(0.02)
        except OSError:  # the client hung up
            pass
        self.close_connection = True


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.hits = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def url(server):
    server.hits.clear()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers() -> list[str]:
    """Every file under $CGAN_HOME except the (empty) lock files."""
    home = cgan_home()
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.parent.name != "locks")


# ---- 1. the cache is keyed on the URL; the record names the URL fetched -----------------------------------------
def test_a_mirrors_file_is_not_reused_for_another_url(url, server):
    _, rec_b = P.fetch_pair(NAME, f"{url}/b", progress=False, expect=TINY)
    assert rec_b["G"]["sha256"] == _sha(BODY["b"]) and rec_b["G"]["url"] == f"{url}/b/{NAME}.pth"
    folder, rec_a = P.fetch_pair(NAME, f"{url}/a", progress=False, expect=TINY)
    assert [h[0] for h in server.hits] == [f"/b/{NAME}.pth", f"/a/{NAME}.pth"]  # asked again, from a
    assert rec_a["G"]["sha256"] == _sha(BODY["a"]) and rec_a["G"]["url"] == f"{url}/a/{NAME}.pth"
    assert P.download(NAME, f"{url}/a", progress=False, expect=TINY).read_bytes() == BODY["a"]
    prov = json.loads((folder / "pair.json").read_text())["provenance"]
    assert prov["downloads"]["G"]["url"] == f"{url}/a/{NAME}.pth"
    assert prov["downloads"]["G"]["sha256"] == _sha(BODY["a"])
    # the same URL again: reused, no second GET, the same record
    assert P.fetch_pair(NAME, f"{url}/a", progress=False, expect=TINY)[1] == rec_a
    assert len(server.hits) == 2


def test_a_cached_file_without_a_record_is_kept_until_a_new_one_is_complete(url, server):
    """An older cgan's cache, or a .pth put there by hand: not trusted as this URL's (so downloaded again), but
    not deleted first, so an offline machine keeps it."""
    final = cgan_home() / "downloads" / f"{NAME}.pth"
    final.parent.mkdir(parents=True)
    final.write_bytes(BODY["b"])
    with pytest.raises(CganError):
        P.download(NAME, "http://127.0.0.1:9/offline", progress=False, expect=TINY, timeout=2)
    assert final.read_bytes() == BODY["b"]
    assert P.download(NAME, f"{url}/a", progress=False, expect=TINY).read_bytes() == BODY["a"]
    assert [h[0] for h in server.hits] == [f"/a/{NAME}.pth"]


def test_the_record_names_the_url_fetched_after_redirects(url, server):
    _, rec = P.fetch_pair(NAME, f"{url}/redir", progress=False, expect=TINY)
    g = rec["G"]
    assert g["url"] == f"{url}/a/{NAME}.pth?X-Amz-Signature=***&X-Amz-Expires=60"
    assert g["requested_url"] == f"{url}/redir/{NAME}.pth" and g["sha256"] == _sha(BODY["a"])
    assert P.fetch_pair(NAME, f"{url}/redir", progress=False, expect=TINY)[1]["G"] == g  # reused, same record
    assert len(server.hits) == 2
    for p in cgan_home().rglob("*.json"):
        assert "SIGSECRET" not in p.read_text(), p


# ---- 2. a stalled server cannot hold the download (and its lock) forever ----------------------------------------
def test_a_dripping_body_is_refused_as_too_slow(url, monkeypatch):
    monkeypatch.setattr(P, "RATE_WINDOW_S", 0.5, raising=False)
    monkeypatch.setattr(P, "MIN_RATE", 100 << 10, raising=False)
    t0 = time.monotonic()
    slow = r"too slow: [\d.]+ KB/s over the last [\d.]+ s, under the minimum of 100 KB/s"
    with pytest.raises(CganError, match=slow) as e:
        P.download(NAME, f"{url}/dripbody", progress=False, expect=TINY)
    assert time.monotonic() - t0 < DRIP_S - 0.5  # not waiting for the server to give up
    assert "nothing was saved" in str(e.value) and "\n" not in str(e.value)
    assert _leftovers() == []


@pytest.mark.parametrize("mode", ["driphead", "dripbody"])
def test_a_download_has_an_overall_deadline(url, monkeypatch, mode):
    """Headers dripped one byte at a time never trip a per-read timeout; neither does a body that is just fast
    enough: the whole download has a deadline (DEADLINE_S, or deadline=)."""
    monkeypatch.setattr(P, "MIN_RATE", 0, raising=False)
    monkeypatch.setattr(P, "DEADLINE_S", 1.0, raising=False)
    t0 = time.monotonic()
    with pytest.raises(CganError, match=r"not complete after 1 s \(a stalled or very slow server\)"):
        P.download(NAME, f"{url}/{mode}", progress=False, expect=TINY)
    assert time.monotonic() - t0 < DRIP_S - 0.5
    with pytest.raises(CganError, match=r"not complete after 0.5 s"):
        P.fetch_pair(NAME, f"{url}/{mode}", progress=False, expect=TINY, deadline=0.5)
    assert _leftovers() == []


# ---- 3. temp files of a killed download are removed --------------------------------------------------------------
def test_temp_files_left_by_a_killed_download_are_removed_under_the_lock(url):
    downloads = cgan_home() / "downloads"
    downloads.mkdir(parents=True)
    records = cgan_home() / "download-records"  # P.RECORDS
    records.mkdir()
    mine = [downloads / f".{NAME}.pth.k1ll3d00.tmp", records / f".{NAME}.json.k1ll3d00.tmp"]
    other = downloads / ".horse2zebra.pth.k1ll3d00.tmp"  # another file's: its own lock, its own download
    for p in [*mine, other]:
        p.write_bytes(b"\0" * 1000)
    with pytest.raises(CganError, match="HTTP 404"):  # a refused download cleans up too
        P.download(NAME, f"{url}/missing", progress=False, expect=TINY)
    assert not any(p.exists() for p in mine) and other.exists()
    mine[0].write_bytes(b"\0" * 1000)
    assert P.download(NAME, f"{url}/a", progress=False, expect=TINY).read_bytes() == BODY["a"]
    assert not mine[0].exists()


def test_without_a_lock_only_old_temp_files_are_removed(url, monkeypatch):
    import cgan._locks

    def no_lock(*a, **k):
        raise OSError("locks not supported here")

    monkeypatch.setattr(cgan._locks, "folder_lock", no_lock)
    downloads = cgan_home() / "downloads"
    downloads.mkdir(parents=True)
    old, fresh = downloads / f".{NAME}.pth.0ld00000.tmp", downloads / f".{NAME}.pth.fr35h000.tmp"
    for p in (old, fresh):
        p.write_bytes(b"\0" * 100)
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    P.download(NAME, f"{url}/a", progress=False, expect=TINY)
    assert not old.exists() and fresh.exists()  # fresh: maybe another process's download in progress


def test_a_download_killed_mid_body_leaves_nothing_a_later_run_keeps(url, tmp_path):
    """SIGKILL runs no cleanup: the temp file stays until the next download of that name takes the lock."""
    code = (f"from cgan.export import pretrained as P; P.download({NAME!r}, {url + '/dripbody'!r}, progress=False)")
    env = {**os.environ, "CGAN_HOME": str(cgan_home())}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    downloads = cgan_home() / "downloads"
    try:
        deadline = time.monotonic() + 30
        while not list(downloads.glob(f".{NAME}.pth.*.tmp")):
            assert time.monotonic() < deadline and proc.poll() is None, "the download never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert list(downloads.glob(f".{NAME}.pth.*.tmp"))  # what the killed process left
    P.download(NAME, f"{url}/a", progress=False, expect=TINY)
    assert sorted(p.name for p in downloads.iterdir()) == [f"{NAME}.pth"]


# ---- 4. redirects: http(s) only, no downgrade, another host logged and recorded ---------------------------------
@pytest.mark.parametrize("mode, target", [("ftp", "ftp://127.0.0.1:1/x.pth"), ("file", "file:///etc/hostname")])
def test_redirects_to_other_schemes_are_refused(url, mode, target):
    with pytest.raises(CganError, match="only http\\(s\\) redirects are followed") as e:
        P.download(NAME, f"{url}/{mode}", progress=False, expect=TINY)
    assert target in str(e.value) and "nothing was saved" in str(e.value)
    assert _leftovers() == []


def test_a_redirect_from_https_down_to_http_is_refused():
    handler = P._Redirects(None, set())
    req = urllib.request.Request("https://mirror.example/models/x.pth")
    with pytest.raises(P._Refused, match="from https to plain http .*http://mirror.example/x.pth.*downgrade"):
        handler.http_error_302(req, io.BytesIO(), 302, "Found", {"location": "http://mirror.example/x.pth"})
    for code in (301, 303, 307, 308):
        with pytest.raises(P._Refused, match="downgrade"):
            getattr(handler, f"http_error_{code}")(req, io.BytesIO(), code, "Moved", {"location": "http://x/y"})
    with pytest.raises(P._Refused, match="only http\\(s\\)"):
        handler.http_error_302(req, io.BytesIO(), 302, "Found", {"location": "ftp://mirror.example/x.pth"})
    # https elsewhere is followed
    assert handler.redirect_request(req, io.BytesIO(), 302, "Found", {}, "https://cdn.example/x.pth") is not None


def test_a_redirect_to_another_host_is_logged_recorded_and_gets_no_password(url, server, caplog):
    port = server.server_address[1]
    base = f"http://user:s3cret@127.0.0.1:{port}/otherhost"
    with caplog.at_level(logging.INFO, logger="cgan.export.pretrained"):
        _, rec = P.fetch_pair(NAME, base, progress=False, expect=TINY)
    assert rec["G"]["url"] == f"http://localhost:{port}/a/{NAME}.pth"
    assert rec["G"]["requested_url"] == f"http://user:***@127.0.0.1:{port}/otherhost/{NAME}.pth"
    assert server.hits == [(f"/otherhost/{NAME}.pth", f"127.0.0.1:{port}", AUTH),  # the password, to its host only
                           (f"/a/{NAME}.pth", f"localhost:{port}", None)]
    assert "redirects to another host" in caplog.text and "s3cret" not in caplog.text


# ---- 5. credentials never shown ---------------------------------------------------------------------------------
def test_credentials_are_sent_but_never_recorded(url, server):
    port = server.server_address[1]
    folder, rec = P.fetch_pair(NAME, f"http://user:s3cret@127.0.0.1:{port}/auth", progress=False, expect=TINY)
    assert rec["G"]["url"] == f"http://127.0.0.1:{port}/auth/{NAME}.pth"  # the password went as a header
    assert rec["G"]["requested_url"] == f"http://user:***@127.0.0.1:{port}/auth/{NAME}.pth"
    assert server.hits[-1][2] == AUTH
    for p in [*cgan_home().rglob("*.json"), *folder.rglob("*")]:
        if p.is_file():
            assert b"s3cret" not in p.read_bytes(), p


@pytest.mark.parametrize("base, secret", [
    ("http://user:s3cret@127.0.0.1:{port}/missing", "s3cret"),
    ("http://user:wr0ngpass@127.0.0.1:{port}/auth", "wr0ngpass"),  # HTTP 401
    ("http://T0KEN4711@127.0.0.1:{port}/missing", "T0KEN4711"),  # a token as the user name
    ("http://127.0.0.1:{port}/missing?access_token=T0KEN4711&v=2", "T0KEN4711"),
    ("http://user:pw%2FZq9@127.0.0.1:{port}/missing", "Zq9"),
    ("http://user:s3cret@127.0.0.1:1/refused", "s3cret"),  # nothing listens: the connection error
    ("http://user:pw/Zq9@127.0.0.1:{port}/x", "Zq9"),  # an unencoded / in the password: not a URL
])
def test_no_message_shows_a_password_or_token(url, server, base, secret):
    base = base.format(port=server.server_address[1])
    with pytest.raises(CganError) as e:
        P.download(NAME, base, progress=False, expect=TINY, timeout=5)
    msg = str(e.value)
    assert secret not in msg and "\n" not in msg, msg
    assert "***" in msg, msg
    assert _leftovers() == []


@pytest.mark.parametrize("raw, shown", [
    ("http://user:s3cret@h:8/x/y.pth", "http://user:***@h:8/x/y.pth"),
    ("https://T0KEN@h/x", "https://***@h/x"),
    ("https://h/x.pth?X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&v=2",
     "https://h/x.pth?X-Amz-Credential=***&X-Amz-Signature=***&v=2"),
    ("http://u:p@ss@h/x?token=t#frag", "http://u:***@h/x?token=***#frag"),
    ("http://u:pa/ss@h/x", "http://u:***@h/x"),
    ("file:///srv/mirror/x.pth", "file:///srv/mirror/x.pth"),
])
def test_redact(raw, shown):
    assert P.redact(raw) == shown


def test_a_token_in_the_base_url_query_stays_a_query(url, server):
    """`--base-url http://host/models?token=T`: the file name goes into the path, the token stays the query."""
    assert P.file_url(f"{url}/a?token=T0KEN", NAME) == f"{url}/a/{NAME}.pth?token=T0KEN"
    _, rec = P.fetch_pair(NAME, f"{url}/a?token=T0KEN", progress=False, expect=TINY)
    assert server.hits[-1][0] == f"/a/{NAME}.pth" and rec["G"]["url"] == f"{url}/a/{NAME}.pth?token=***"


@pytest.fixture
def https_url(tmp_path, monkeypatch):
    """https://127.0.0.1:PORT with a self-signed certificate this process trusts (skipped without openssl)."""
    import shutil
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.hits = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_https_downloads_refuse_a_downgrade_and_keep_the_deadline(https_url, monkeypatch):
    """The same over TLS: a good file, a redirect to plain http (to another host: the otherhost mode), and headers
    dripped through TLS cut off by the deadline."""
    assert P.fetch_pair(NAME, f"{https_url}/a", progress=False, expect=TINY)[1]["G"]["sha256"] == _sha(BODY["a"])
    with pytest.raises(CganError, match="from https to plain http .*a downgrade is refused"):
        P.download(NAME, f"{https_url}/otherhost", progress=False, expect=TINY)
    monkeypatch.setattr(P, "MIN_RATE", 0, raising=False)
    t0 = time.monotonic()
    with pytest.raises(CganError, match="not complete after 1 s"):
        P.download(NAME, f"{https_url}/driphead", progress=False, expect=TINY, deadline=1.0)
    assert time.monotonic() - t0 < DRIP_S - 0.5
