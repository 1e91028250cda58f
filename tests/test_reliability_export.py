"""The exporter under stress: hostile downloads from a local HTTP server, kill -9 mid-export, two exports into
one folder at once."""
from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _helpers_reliability import random_bytes, tree, write_pickle_bomb
from _helpers_runtime import make_pair
from cgan._cli import run
from cgan._files import read_json, verify_record
from cgan.spec import GeneratorSpec

pytest.importorskip("cgan.export.api")
pytest.importorskip("cgan.export.pretrained")

TINY = GeneratorSpec(blocks=1, ngf=4)
NAME = "summer2winter_yosemite"


# ---- a local "official server" ------------------------------------------------------------------------------
class Server:
    """http://127.0.0.1:PORT serving {path: (body, content_type, declared_length or None)}."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, str, int | None]] = {}
        self.hits: list[str] = []
        files, hits = self.files, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                hits.append(self.path)
                if self.path not in files:
                    self.send_error(404)
                    return
                body, ctype, length = files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/models"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def put(self, name: str, body: bytes, ctype: str = "application/octet-stream", length: int | None = None):
        self.files[f"/models/{name}"] = (body, ctype, length)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _generator_bytes(tmp_path: Path, spec: GeneratorSpec, seed: int = 0) -> bytes:
    import torch

    from cgan.trainer.networks import build_generator

    torch.manual_seed(seed)
    p = tmp_path / f"gen-{spec.blocks}-{spec.ngf}-{seed}.pth"
    torch.save(build_generator(spec).state_dict(), p)
    return p.read_bytes()


def _export_cli(argv, capsys):
    from cgan.export.cli import cli

    code = run(cli, argv)
    return code, capsys.readouterr().err


def _one_line(code, err, *needles):
    assert code in (2, 3), (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("\r", "  "))]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1, err
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.mark.parametrize("case, words", [
    ("pickle-bomb", "never pickled code"),
    ("wrong-architecture", "ResNet-1 ngf 4"),
    ("html", "web page"),
    ("html-as-binary", "HTML page"),
    ("random", "not a PyTorch file"),
    ("truncated", "truncated download"),
    ("huge-network", "not an official ResnetGenerator"),
    ("missing", "HTTP 404"),
])
def test_hostile_downloads_are_refused_and_nothing_is_saved(tmp_path, server, capsys, _isolated_home, case, words):
    marker = tmp_path / "PWNED"
    if case == "pickle-bomb":
        server.put(f"{NAME}.pth", write_pickle_bomb(tmp_path / "bomb.pth", marker).read_bytes())
    elif case == "wrong-architecture":
        server.put(f"{NAME}.pth", _generator_bytes(tmp_path, TINY))
    elif case == "html":
        server.put(f"{NAME}.pth", b"<!DOCTYPE html><html><body>Moved</body></html>", "text/html; charset=utf-8")
    elif case == "html-as-binary":
        server.put(f"{NAME}.pth", b"<!DOCTYPE html><html><body>captive portal</body></html>")
    elif case == "random":
        server.put(f"{NAME}.pth", random_bytes(4096))
    elif case == "huge-network":
        from _helpers_reliability import write_huge_spec_pth

        server.put(f"{NAME}.pth", write_huge_spec_pth(tmp_path / "huge.pth").read_bytes())
    elif case == "truncated":
        body = _generator_bytes(tmp_path, TINY)
        server.put(f"{NAME}.pth", body[:1000], length=len(body))
    out = tmp_path / "export"
    code, err = _export_cli(["--pretrained", NAME, "--base-url", server.url, "--out", str(out), "--no-parity"],
                            capsys)
    _one_line(code, err, words, "nothing was saved")
    assert ".tmp" not in err  # the download is named, not the hidden temp file it was checked in
    assert server.hits, "the test server was never asked"
    assert not marker.exists(), "unpickling ran code"
    # only the empty lock file that serialized the fetch may remain (locks are never deleted: that would race)
    saved = {k: v for k, v in tree(_isolated_home).items() if not (k.startswith("locks/") and v == 0)}
    assert saved == {}, "a refused download left files behind"
    assert not out.exists()


def test_good_download_is_checked_recorded_and_reused(tmp_path, server, _isolated_home):
    from cgan.export.api import ExportOptions, run_export

    body = _generator_bytes(tmp_path, TINY, seed=1)
    server.put(f"{NAME}.pth", body)
    opts = ExportOptions(pretrained=NAME, base_url=server.url, fp16=False, parity=False, simplify=False,
                         extra={"pretrained": {"expect": TINY, "progress": False}})
    out = run_export(None, tmp_path / "export", opts)
    manifest = read_json(out / "manifest.json")
    rec = manifest["source"]["pretrained"]["downloads"]["G"]
    assert rec["sha256"] == hashlib.sha256(body).hexdigest() and rec["bytes"] == len(body)
    assert rec["url"].startswith("http://127.0.0.1:")
    for f in manifest["files"]:
        verify_record(out, f, "manifest.json")
    # a second export reuses the verified download; a download replaced on disk by a bomb is re-fetched
    hits = len(server.hits)
    run_export(None, tmp_path / "export2", opts)
    assert len(server.hits) == hits
    marker = tmp_path / "PWNED"
    write_pickle_bomb(_isolated_home / "downloads" / f"{NAME}.pth", marker)
    run_export(None, tmp_path / "export3", opts)
    assert len(server.hits) == hits + 1 and not marker.exists()


# ---- kill -9 mid-export ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("rel_export") / "pair", blocks=1, ngf=4)


def _final_files_are_whole(out: Path) -> None:
    """Nothing partial under a final name: every visible file is complete; a manifest verifies."""
    import onnx

    for p in out.iterdir():
        if p.name.startswith("."):
            continue
        if p.suffix == ".onnx":
            onnx.checker.check_model(onnx.load(str(p)))
    if (out / "manifest.json").exists():
        for f in read_json(out / "manifest.json")["files"]:
            verify_record(out, f, "manifest.json")


def test_kill_9_mid_export_leaves_no_partial_file(tmp_path, tiny_pair):
    """An export replacing an older one is killed while its files are being written."""
    from cgan.export.api import ExportOptions, run_export

    out = tmp_path / "export"
    run_export(str(tiny_pair), out, ExportOptions(fp16=False, parity=False, simplify=False))
    cmd = [sys.executable, "-c", "from cgan.export.cli import main; main()", str(tiny_pair), "--out", str(out),
           "--no-parity"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < 60:
            assert proc.poll() is None, "the export finished before it could be killed"
            staging = list(out.glob(".export-staging-*"))
            if staging and (staging[0] / "G.fp16.onnx").exists():
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _final_files_are_whole(out)
    # the next export into the folder works and cleans up what the killed one left
    run_export(str(tiny_pair), out, ExportOptions(fp16=True, parity=False, simplify=False))
    _final_files_are_whole(out)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".export-staging-")], "stale staging left"


# ---- two exports into one folder ---------------------------------------------------------------------------
def test_two_concurrent_exports_into_one_folder(tmp_path, tiny_pair, monkeypatch):
    """Two exports (threads here; processes share the same lock file) into one folder: they never build at the
    same time, only one builds (the second finds the first's verified export and keeps it), both succeed, and
    the folder ends consistent."""
    from cgan.export import onnx_export
    from cgan.export.api import ExportOptions, run_export

    active, peak, calls, lock = [0], [0], [0], threading.Lock()
    real_export = onnx_export.export_onnx

    def slow_export(*a, **k):
        with lock:
            active[0] += 1
            calls[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.3)
            return real_export(*a, **k)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(onnx_export, "export_onnx", slow_export)
    out = tmp_path / "export"
    errors, results = [], []

    def job():
        try:
            results.append(run_export(str(tiny_pair), out, ExportOptions(fp16=False, parity=False,
                                                                          simplify=False)))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 2
    assert peak[0] == 1, "two exports wrote into one folder at the same time"
    assert calls[0] == 2, f"expected one build (G and F), got {calls[0]} ONNX exports"
    _final_files_are_whole(out)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".export-staging-")]


# ---- cgan-export over broken pairs: one line, exit 3, nothing written --------------------------------------------
@pytest.mark.parametrize("damage, words", [
    ("hash", "sha256"),
    ("truncated", "truncated or replaced"),
    ("traversal", "outside its folder"),
    ("forged-hashes", "safetensors"),
    ("huge-spec", "weights, the spec needs"),
    ("pair-json", "pair.json"),
])
def test_export_of_a_broken_pair_is_one_line_and_writes_nothing(tmp_path, tiny_pair, capsys, damage, words):
    import shutil

    from _helpers_reliability import rehash_pair, truncate
    from cgan._files import write_json_atomic

    pair = Path(shutil.copytree(tiny_pair, tmp_path / "pair"))
    meta = read_json(pair / "pair.json")
    if damage == "hash":
        meta["files"]["G"]["sha256"] = "0" * 64
    elif damage == "traversal":
        meta["files"]["F"]["path"] = "../../etc/passwd"
    elif damage == "huge-spec":
        meta["spec"]["generator"].update(blocks=64, ngf=1024)
    write_json_atomic(pair / "pair.json", meta)
    if damage == "truncated":
        truncate(pair / "G.safetensors", 0.5)
    elif damage == "forged-hashes":
        (pair / "F.safetensors").write_bytes(random_bytes(2000))
        rehash_pair(pair)
    elif damage == "pair-json":
        (pair / "pair.json").write_bytes(random_bytes(300))
    before = tree(pair)
    out = tmp_path / "export"
    code, err = _export_cli([str(pair), "--out", str(out), "--no-parity"], capsys)
    assert code == 3, err
    _one_line(code, err, words)
    assert tree(out) == {}, "a refused export left files behind"
    assert tree(pair) == before


def test_out_that_holds_a_pair_is_refused_and_left_alone(tmp_path, tiny_pair, capsys):
    """--out onto another pair folder turned it into an export of this pair (hiding the pair); --out RUN for
    RUN/pair (the trainer's layout) replaced the source pair with the export's copy."""
    import shutil

    run_dir = tmp_path / "run"
    src = Path(shutil.copytree(tiny_pair, run_dir / "pair"))
    other = Path(shutil.copytree(tiny_pair, tmp_path / "other"))
    before = (tree(run_dir), tree(other))
    for out, words in ((run_dir, "holds the source pair"), (other, "is a pair folder")):
        code, err = _export_cli([str(src), "--out", str(out), "--no-parity"], capsys)
        _one_line(code, err, words)
    assert (tree(run_dir), tree(other)) == before


def test_an_export_can_be_rebuilt_in_place(tmp_path, tiny_pair):
    """`cgan-export NAME` where NAME is only an export (its pair/ copy is the source) into that same folder: the
    rebuild the runtime's hint asks for. It must not be taken for `--out RUN` over RUN/pair."""
    from cgan.export import export_pair

    out = export_pair(tiny_pair, tmp_path / "exp", parity=False)
    again = export_pair(out, out, parity=False, force=True)
    assert again == out and (out / "manifest.json").is_file() and (out / "pair" / "pair.json").is_file()


SLOW_PARITY = ("import time, cgan.export.parity as p\n"
               "real = p.check_generator\n"
               "p.check_generator = lambda *a, **k: (time.sleep(60), real(*a, **k))[1]\n"
               "from cgan.export.cli import main\n"
               "main()\n")


def test_sigterm_mid_export_cleans_up_like_ctrl_c(tmp_path, tiny_pair):
    """SIGTERM (a service manager, `timeout`) killed cgan-export at its default action: a new --out folder was
    left holding only the staging folder with full-size graphs. It now cleans up as Ctrl-C does and exits 143."""
    out = tmp_path / "new" / "export"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PARITY, str(tiny_pair), "--out", str(out), "--no-fp16"],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < 60:
            assert proc.poll() is None, "the export finished before it could be stopped"
            staging = list(out.glob(".export-staging-*")) if out.exists() else []
            if staging and (staging[0] / "G.fp32.onnx").exists():
                break
            time.sleep(0.01)
        time.sleep(0.3)  # inside the (slowed) parity check
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and err.strip().endswith("terminated"), err[-1000:]
    assert not out.exists() or not list(out.iterdir())
