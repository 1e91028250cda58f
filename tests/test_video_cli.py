"""cgan-video CLI: bad inputs give one line and a non-zero exit; SIGINT/SIGTERM leave a playable file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.runtime import video
from cgan.runtime.cli import cli

from _helpers_video import make_clip, pattern, probe

REPO = Path(__file__).resolve().parents[1]


def cgan_video(argv: list[str], capsys) -> tuple[int, str, str]:
    code = run(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "in.mp4", 10)


def _sound_only(path) -> None:
    """A file with one AAC stream and no video (a voice memo named .mp4): "cannot decode ...; re-encode it"
    sent the user to re-encode what holds no pictures."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=44100)
        s.layout = "mono"
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def test_bad_inputs_one_line(tmp_path, clip, capsys):
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(1).integers(0, 255, 3000, dtype=np.uint8).tobytes())
    (tmp_path / "empty.avi").write_bytes(b"")
    make_clip(tmp_path / "zero.avi", 0, fourcc="MJPG")
    _sound_only(tmp_path / "voice.mp4")
    cases = [
        (["--input", str(tmp_path / "voice.mp4")], "voice.mp4 has no video stream, only sound (aac): nothing to"),
        (["--input", str(tmp_path / "missing.mp4")], "not found"),
        (["--input", str(tmp_path / "junk.mp4")], "cannot decode"),
        (["--input", str(tmp_path / "empty.avi")], "empty"),
        (["--input", str(tmp_path / "zero.avi")], "zero.avi"),
        (["--input", "57"], "no camera at index 57"),
        (["--input", "/dev/video57"], "/dev/video57"),
        (["--input", "ftp://host/x"], "scheme"),
        (["--input", str(clip), "--output", str(tmp_path / "o.xyz")], "unknown container '.xyz'; use one of .mp4 ("),
        (["--input", str(clip), "--output", str(tmp_path)], "folder"),
        (["--input", str(clip), "--size", "huge"], "--size"),
        (["--input", str(clip), "--size", "99999x99999"], "megapixels"),
        (["--input", str(clip), "--size", "99999"], "long side"),
        (["--input", str(clip), "--size", "16000", "--no-display"], "16000x12000"),
        (["--input", str(clip), "--output", str(clip / "o.mp4")], "cannot create output folder"),
        (["--input", str(clip), "--output", str(clip)], "is the input"),
        (["--input", str(clip), "--input", str(make_clip(tmp_path / "w_1.mp4", 3)), "--output",
          str(tmp_path / "w.mp4")], "is the input"),
        # one --output per --input was taken for pairs, and only the last written, as w_0.mp4 and w_1.mp4
        (["--input", str(clip), "--output", str(tmp_path / "v.mp4"), "--input", str(clip), "--output",
          str(tmp_path / "w.mp4")], "--output is given 2 times ("),
    ]
    for argv, needle in cases:
        code, _, err = cgan_video(argv + ["--no-progress"], capsys)
        assert_one_line_error(code, err, needle)


def test_output_not_writable(tmp_path, clip, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = cgan_video(["--input", str(clip), "--output", str(ro / "o.mp4")], capsys)
    finally:
        ro.chmod(0o700)
    assert_one_line_error(code, err, "not writable")


def test_forced_display_on_headless_opencv_says_why(clip, capsys):
    from cgan.runtime.video import gui_problem

    if gui_problem() is None:
        pytest.skip("this OpenCV has a GUI and a display")
    code, _, err = cgan_video(["--input", str(clip), "--display"], capsys)
    assert_one_line_error(code, err, "--display")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 displays and abstract sockets: Linux")
def test_a_display_no_x_server_answers_is_not_used(clip, capsys, monkeypatch, tmp_path):
    """With a GUI OpenCV and $DISPLAY set to where no X server answers (ssh without -X, a closed desktop), Qt
    aborted the process (SIGABRT) at the first window: no output, a temp file left. The default now writes the
    file without a window, and --display says why in one line."""
    import socket

    num = 4000 + os.getpid() % 2000
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # an X server's abstract socket
        server.bind(f"\0/tmp/.X11-unix/X{num}")
        server.listen(1)
        assert video.x_server_answers(f":{num}") and video.x_server_answers(f"unix:{num}.0")
    assert not video.x_server_answers(f":{num}")
    with socket.socket() as server:  # ssh -X's display: localhost:N is TCP port 6000 + N
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert video.x_server_answers("127.0.0.1:1", tcp_base=port - 1)
    assert not video.x_server_answers("127.0.0.1:1", tcp_base=port - 1, timeout=0.5)
    assert video.x_server_answers("not a display")  # cannot be told: the window may try

    monkeypatch.setattr(video.cv2, "getBuildInformation", lambda: "  GUI:                           QT5\n")
    monkeypatch.setenv("DISPLAY", f":{num}")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert f"no X server answers at DISPLAY=:{num}" in video.gui_problem()
    monkeypatch.setattr(video.cv2, "imshow", lambda *a: (_ for _ in ()).throw(AssertionError("a window")))
    code, out, err = cgan_video(["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--max-frames", "2"],
                                capsys)
    assert code == 0 and probe(tmp_path / "o.mp4")[0] == 2
    code, _, err = cgan_video(["--input", str(clip), "--display", "--max-frames", "2"], capsys)
    assert_one_line_error(code, err, f"no X server answers at DISPLAY=:{num}")


def test_corrupt_file_subprocess_stderr_is_one_line(tmp_path):
    """The real console entry: FFmpeg/OpenCV log noise is silenced too."""
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8)
    p = subprocess.run([sys.executable, "-c", "from cgan.runtime.cli import main; main()", "--input", str(junk)],
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert_one_line_error(p.returncode, p.stderr, "cannot decode")


def test_verbose_json_output_stays_json(tmp_path):
    """OpenCV prints its and FFmpeg's warnings on standard output: with -v, a JPEG-coded clip's "deprecated
    pixel format used" line came before --json's summary, which then did not parse."""
    import json

    import cv2

    clip = tmp_path / "mjpg.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        w.write(pattern(i))
    w.release()
    p = subprocess.run([sys.executable, "-c", "from cgan.runtime.cli import main; main()", "-v", "--json",
                        "--no-progress", "--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--backend",
                        "ort-cpu", "--size", "64"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["frames"] == 3, p.stdout[:300]


def _translator_available() -> bool:
    try:
        from cgan.runtime import Translator  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _translator_available(), reason="cgan.runtime.Translator not there yet")
def test_unknown_pair_and_backend_list_valid_ones(clip, capsys):
    code, _, err = cgan_video(["--input", str(clip), "--pair", "nosuchpair"], capsys)
    assert_one_line_error(code, err, "nosuchpair")
    code, _, err = cgan_video(["--input", str(clip), "--backend", "warp-drive"], capsys)
    assert_one_line_error(code, err, "warp-drive", "torch")


SCRIPT = textwrap.dedent("""
    import sys, time
    from cgan.runtime.video import VideoJob, run_video
    from cgan._codecs import quiet_opencv
    quiet_opencv("SILENT")

    class Slow:
        def translate_batch(self, frames):
            time.sleep(0.02)
            return [255 - f for f in frames]

    s = run_video(VideoJob(inputs=[sys.argv[1]], output=sys.argv[2], display=False, progress=False), Slow())
    print(s.ended, s.frames, flush=True)
""")


@pytest.mark.parametrize("sig, ended", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_signal_mid_file_leaves_playable_output(tmp_path, sig, ended):
    clip = make_clip(tmp_path / "long.mp4", 400)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(clip), str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".out.partial-*.mp4")):  # the writer has started writing frames
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pipeline never started writing"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    status, frames = stdout.split()
    assert status == ended and 0 < int(frames) < 400
    n, _, size = probe(out)
    assert n == int(frames) and size == (64, 48)
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("ended,code", [("interrupted", 130), ("terminated", 143), ("end", 0)])
def test_cli_exit_code_says_how_the_run_ended(monkeypatch, capsys, ended, code):
    from cgan.runtime import cli as video_cli
    from cgan.runtime.video import VideoSummary

    monkeypatch.setattr(video_cli, "run_video", lambda job: VideoSummary(ended=ended))
    assert run(cli, ["--input", "demo", "--no-display"]) == code


@pytest.mark.parametrize("forced,code", [(KeyboardInterrupt, 130), ("Terminated", 143)])
def test_a_forced_stop_still_prints_the_summary(monkeypatch, capsys, forced, code):
    """A second Ctrl-C (SIGTERM) forces the stop; run_video hands what was done on the exception, and --json
    prints it (it printed nothing, so a script reading stdout got no JSON); an interrupt without one (before
    the run started) stays the plain 'interrupted'."""
    import json

    from cgan.errors import Terminated
    from cgan.runtime import cli as video_cli
    from cgan.runtime.video import VideoSummary

    kind = Terminated if forced == "Terminated" else forced
    ended = "terminated" if kind is Terminated else "interrupted"

    def forced_stop(job):
        e = kind()
        e.summary = VideoSummary(frames=7, ended=ended, outputs=["o.mp4"])
        raise e

    monkeypatch.setattr(video_cli, "run_video", forced_stop)
    assert run(cli, ["--input", "demo", "--no-display", "--json"]) == code
    out = capsys.readouterr().out
    assert json.loads(out)["frames"] == 7 and json.loads(out)["ended"] == ended
    assert run(cli, ["--input", "demo", "--no-display"]) == code
    assert "frames 7" in capsys.readouterr().out

    def early(job):
        raise kind()

    monkeypatch.setattr(video_cli, "run_video", early)
    assert run(cli, ["--input", "demo", "--no-display", "--json"]) == code
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == ended


# ---- --compile / --cuda-graphs ------------------------------------------------------------------------------
def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.parametrize("argv, needle", [
    (["--compile"], "--compile needs --backend torch (auto may pick"),
    (["--compile", "--backend", "ort-cpu"], "--compile needs --backend torch (not ort-cpu)"),
    (["--compile", "--backend", "ort-cuda"], "--compile needs --backend torch (not ort-cuda)"),
    (["--cuda-graphs"], "--cuda-graphs needs --backend one of torch, ort-cuda, tensorrt, tensorrt-rtx"),
    (["--no-cuda-graphs", "--backend", "ort-cpu"], "--no-cuda-graphs needs --backend one of torch"),
    (["--compile", "--backend", "warp-drive"], "unknown backend 'warp-drive'"),
    (["--compile-mode", "default"], "--compile-mode needs --backend torch (auto may pick"),
    (["--compile-mode", "default", "--backend", "ort-cpu"], "--compile-mode needs --backend torch (not ort-cpu)"),
    (["--compile-mode", "fast", "--backend", "torch"], "Invalid value for '--compile-mode': 'fast' is not one of"),
])
def test_backend_flags_need_a_backend_that_takes_them(clip, capsys, monkeypatch, argv, needle):
    import cgan.runtime as rt

    def never(*a, **k):
        raise AssertionError("the translator must not be loaded")

    if "warp-drive" not in argv:
        monkeypatch.setattr(rt.Translator, "load", never)
    code, _, err = cgan_video(["--input", str(clip), "--no-display", "--no-progress"] + argv, capsys)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("argv, opts", [
    ([], {}),
    (["--backend", "torch", "--compile"], {"compile": True}),
    (["--backend", "torch", "--compile", "--cuda-graphs"], {"compile": True, "cuda_graph": True}),
    (["--backend", "torch", "--compile-mode", "default", "--cuda-graphs"],
     {"compile": True, "compile_mode": "default", "cuda_graph": True}),
    (["--backend", "torch", "--compile", "--compile-mode", "max-autotune"],
     {"compile": True, "compile_mode": "max-autotune"}),
    (["--backend", "ort-cuda", "--no-cuda-graphs"], {"cuda_graph": False}),
    (["--backend", "tensorrt", "--cuda-graphs"], {"cuda_graph": True}),
])
def test_backend_flags_reach_translator_load(clip, capsys, monkeypatch, argv, opts):
    import cgan.runtime as rt

    seen = []

    class Fake:
        def translate_batch(self, frames):
            return [255 - f for f in frames]

        def close(self):
            pass

    def load(source, direction=None, backend="auto", precision=None, **kw):
        seen.append((backend, kw))
        return Fake()

    monkeypatch.setattr(rt.Translator, "load", staticmethod(load))
    code, _, err = cgan_video(["--input", str(clip), "--no-display", "--no-progress", "--max-frames", "2"] + argv,
                              capsys)
    assert code == 0, err
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "auto"
    assert seen == [(backend, opts)]


@pytest.mark.skipif(_has_cuda(), reason="checks the CPU-only message")
def test_cuda_graphs_on_a_cpu_only_torch_says_so(clip, capsys):
    code, _, err = cgan_video(["--input", str(clip), "--no-display", "--backend", "torch", "--cuda-graphs"], capsys)
    assert_one_line_error(code, err, "need device cuda")


def test_no_cuda_graphs_runs_with_the_real_torch_backend(tmp_path, clip, capsys):
    out = tmp_path / "o.mp4"
    code, text, err = cgan_video(["--input", str(clip), "--no-display", "--no-progress", "--backend", "torch",
                                  "--no-cuda-graphs", "--max-frames", "2", "--output", str(out)], capsys)
    assert code == 0, err
    assert probe(out)[0] == 2 and "frames 2" in text


def test_headless_run_without_output_is_refused(tmp_path, capsys, monkeypatch, caplog):
    """`cgan-video --input 0` on a machine with no display (or headless OpenCV) would translate and show and write
    nothing until Ctrl-C: one line instead. An explicit --no-display without --output stays allowed (speed check)."""
    monkeypatch.setattr(video, "gui_problem", lambda: "no display to show a window on ($DISPLAY is not set); "
                                                          "use --no-display with --output FILE")
    caplog.set_level("INFO", logger="cgan.runtime.video")
    clip = make_clip(tmp_path / "in.mp4", 3)
    code, _, err = cgan_video(["--input", str(clip)], capsys)
    assert_one_line_error(code, err, "nothing would be shown or written", "--output")
    code, _, err = cgan_video(["--input", str(clip), "--no-display", "--no-progress", "--max-frames", "2"],
                              capsys)
    assert code == 0, err
    assert "speed check" in caplog.text


def test_a_signal_while_the_run_already_ends_keeps_its_reason():
    """Ctrl-C after q/ESC (or after the input ended) while the run shuts down: the run keeps its reason (exit 0,
    not 130); a second Ctrl-C still forces the stop."""
    import threading
    from types import SimpleNamespace

    pipe = SimpleNamespace(stop=threading.Event(), ended="quit", signals=0)
    pipe.stop.set()
    with video._signals({"pipe": pipe}, video._handled_signals(True)):
        signal.raise_signal(signal.SIGINT)
    assert pipe.ended == "quit" and pipe.signals == 1
    with pytest.raises(KeyboardInterrupt), video._signals({"pipe": pipe}, video._handled_signals(True)):
        signal.raise_signal(signal.SIGINT)
    running = SimpleNamespace(stop=threading.Event(), ended="end", signals=0)
    with video._signals({"pipe": running}, video._handled_signals(True)):
        signal.raise_signal(signal.SIGTERM)
    assert running.ended == "terminated" and running.stop.is_set()


def test_an_unknown_container_lists_the_codecs_that_would_be_written(tmp_path, capsys):
    """The list named OpenCV's fallback codecs (".mp4 (mp4v)") where --codec auto writes H.264."""
    from cgan.runtime import pyav

    clip = make_clip(tmp_path / "in.mp4", 2)
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.xyz"), "--no-display"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and ".avi (Motion JPEG)" in err
    assert (".mp4 (H.264)" if pyav.has_h264() else ".mp4 (MPEG-4)") in err
    code = run(cli, ["--input", str(clip), "--output", str(tmp_path / "o.webm"), "--codec", "mp4v", "--no-display"])
    assert code == 2 and ".mp4 (MPEG-4)" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--smooth-flow"], ["--smooth-strength", "0.9"]])
def test_a_smoothing_option_alone_turns_smoothing_on(tmp_path, clip, capsys, option):
    """docs/video.md: 'use --smooth-flow for handheld or panning footage'; alone it was refused ('tunes --smooth,
    which is off'). It smooths now, as --smooth does, and the summary reports the flicker before and after."""
    import json

    code, out, err = cgan_video(["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--no-display",
                                 "--no-progress", "--json", *option], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 10 and summary["smooth_fps"] > 0
    assert summary["streams"][0]["flicker"] is not None


def test_compile_mode_in_the_jobs_is_checked():
    from cgan.errors import CganError
    from cgan.runtime.photos import PhotoJob
    from cgan.runtime.video import VideoJob

    for make in (lambda **k: VideoJob(inputs=["demo"], **k), lambda **k: PhotoJob(inputs=["a.jpg"], **k)):
        assert make(compile=True, compile_mode="default").compile_mode == "default"
        with pytest.raises(CganError, match="compile_mode='default' needs compile=True"):
            make(compile_mode="default")
        with pytest.raises(CganError, match="compile_mode must be one of max-autotune-no-cudagraphs, .*got str 'fast'"):
            make(compile=True, compile_mode="fast")
