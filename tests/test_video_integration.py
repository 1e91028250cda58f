"""cgan-video with the real Translator (torch backend, CPU) on a tiny pair: the whole path end to end."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
runtime = pytest.importorskip("cgan.runtime")
if not hasattr(runtime, "Translator"):
    pytest.skip("cgan.runtime.Translator not there yet", allow_module_level=True)

from cgan._cli import run  # noqa: E402
from cgan.runtime import Translator  # noqa: E402
from cgan.runtime.cli import cli  # noqa: E402
from cgan.runtime.video import VideoJob, run_video  # noqa: E402

from _helpers_runtime import make_pair  # noqa: E402
from _helpers_video import make_clip, probe  # noqa: E402

#: Largest mean |difference| of 8x8 block means allowed between a frame read back from the output video and the
#: runtime's own translation of the same input frame. A random generator paints a pixel-level checkerboard that
#: lossy codecs throw away (the translation itself, written and read back alone, is off by ~55 gray levels per
#: pixel with MJPG and mp4v), so frames are compared by their 8x8 block means: the DC terms of the 8x8 DCT both
#: codecs use, which they keep. Measured (OpenCV 4 / FFmpeg): MJPG 1.7, mp4v 2.0-3.8; an untranslated frame is
#: 47-53 away, the other direction's translation ~25.
CODEC_TOL = 6.0


@pytest.fixture
def tiny_pair(tmp_path):
    """A tiny pair whose G and F differ and change the picture a lot (not near-constant mid-gray outputs), so a
    frame written untranslated, or translated by the wrong generator, is far from the expected one."""
    return make_pair(tmp_path / "pair", domains=("a", "b"))


def _first_frame(path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"no frame decodes from {path}"
    return frame


def _block_diff(a: np.ndarray, b: np.ndarray, block: int = 8) -> float:
    """Mean |a - b| of the two BGR frames' block x block means (gray levels)."""
    assert a.shape == b.shape and a.shape[0] % block == 0 and a.shape[1] % block == 0, (a.shape, b.shape)
    size = (a.shape[1] // block, a.shape[0] // block)
    small = [cv2.resize(x, size, interpolation=cv2.INTER_AREA).astype(np.float32) for x in (a, b)]
    return float(np.abs(small[0] - small[1]).mean())


def test_real_translator_video_round_trip(tmp_path, tiny_pair):
    """File in, file out through the real torch Translator: frame count, size and fps survive, and the written
    frames are the translation (the first one, which --smooth leaves as is, matches Translator.translate of the
    first input frame within the codec's error and is far from the input: a pipeline writing its input passes
    no more)."""
    clip = make_clip(tmp_path / "in.mp4", 6, (64, 48), fps=10)
    out = tmp_path / "out.avi"
    s = run_video(VideoJob(inputs=[str(clip)], pair=str(tiny_pair), backend="torch", output=str(out),
                           display=False, progress=False, handle_signals=False, smooth=True))
    assert s.frames == 6 and s.outputs == [str(out)]
    n, fps, size = probe(out)
    assert (n, size) == (6, (64, 48)) and fps == pytest.approx(10, abs=0.01)
    frame = _first_frame(clip)  # the decoded input frame the pipeline read
    with Translator.load(str(tiny_pair), backend="torch") as t:
        want = t.translate(frame)
    got = _first_frame(out)
    assert _block_diff(got, want) < CODEC_TOL
    assert _block_diff(got, frame) > 5 * CODEC_TOL


def test_cli_with_real_translator(tmp_path, tiny_pair, capsys):
    """cgan-video with two inputs, --direction F and --side-by-side: one file per input, input on the left and
    its F translation on the right (checked against Translator.translate, and against the input and the G
    translation, which it must not be)."""
    a = make_clip(tmp_path / "a.mp4", 4, (64, 48))
    b = make_clip(tmp_path / "b.mp4", 4, (40, 32))
    code = run(cli, ["--pair", str(tiny_pair), "--direction", "F", "--backend", "torch", "--input", str(a),
                     "--input", str(b), "--output", str(tmp_path / "o.mp4"), "--side-by-side", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "frames 8" in out
    assert probe(tmp_path / "o_0.mp4")[::2] == (4, (128, 48))
    assert probe(tmp_path / "o_1.mp4")[::2] == (4, (80, 32))
    with Translator.load(str(tiny_pair), direction="F", backend="torch") as f, \
            Translator.load(str(tiny_pair), direction="G", backend="torch") as g:
        for src, written, width in ((a, "o_0.mp4", 64), (b, "o_1.mp4", 40)):
            frame = _first_frame(src)
            got = _first_frame(tmp_path / written)
            left, right = got[:, :width], got[:, width:]
            assert _block_diff(left, frame) < CODEC_TOL, written
            assert _block_diff(right, f.translate(frame)) < CODEC_TOL, written
            assert _block_diff(right, frame) > 5 * CODEC_TOL, written
            assert _block_diff(right, g.translate(frame)) > 2 * CODEC_TOL, written
