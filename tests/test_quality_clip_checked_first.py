"""cgan-eval checked only that --clip exists: an unreadable clip, a one-frame clip or one whose size is not a
multiple of 4 failed after the FID/KID work, and the whole report was lost. They fail before anything loads."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from cgan.benchmarks import quality
from cgan.errors import CganError


def _clip(path, frames, size=(32, 32)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, size)
    for i in range(frames):
        w.write(np.full((size[1], size[0], 3), 40 + 20 * i, np.uint8))
    w.release()
    return path


@pytest.mark.parametrize("kind,needle", [("text", "cannot open video|0 readable frames"),
                                         ("one-frame", "1 readable frame;"),
                                         ("odd-size", "multiple of 4")])
def test_a_bad_clip_fails_in_the_option_checks(tmp_path, kind, needle):
    if kind == "text":
        clip = tmp_path / "c.avi"
        clip.write_text("not a video")
    elif kind == "one-frame":
        clip = _clip(tmp_path / "c.avi", 1)
    else:
        clip = _clip(tmp_path / "c.avi", 3, (30, 22))

    opts = quality.EvalOptions(pair="unused", data=tmp_path, clip=clip, json_out=tmp_path / "r.json")
    with pytest.raises(CganError, match=needle):
        quality.check_eval_options(opts)
    assert not (tmp_path / "r.json").exists()


def test_a_good_clip_passes(tmp_path):
    clip = _clip(tmp_path / "c.avi", 3)
    quality.check_eval_options(quality.EvalOptions(pair="unused", data=tmp_path, clip=clip))
    frames, fps = quality.read_clip(clip, limit=2)
    assert len(frames) == 2 and fps == 5
