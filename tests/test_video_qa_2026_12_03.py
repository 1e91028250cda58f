"""cgan-video's video side, from the QA pass of 2026-12-03: what was said wrongly or written wrongly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime.batch import run_video_folder
from cgan.runtime.cli import cli
from cgan.runtime.video import VideoJob, check_output, run_video

from _helpers_video import Invert, make_clip, probe

QUIET = dict(display=False, progress=False, handle_signals=False)


def _one_line(capsys, code: int, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and needle in err and "\n" not in err, err
    return err


def test_an_empty_output_is_said_in_the_commands_words(capsys):
    """It said "output must be a video file name (str or path, e.g. 'out.mp4') or None, got str ''"."""
    err = _one_line(capsys, run(cli, ["--input", "demo", "--output", "", "--no-display"]), "--output is empty")
    assert "str" not in err


@pytest.mark.parametrize("inputs", [1, 2])
@pytest.mark.parametrize("name", ["exdir", "newdir/"])
def test_an_output_folder_is_said_with_the_naming_of_several_outputs(tmp_path, capsys, monkeypatch, inputs, name):
    """Two inputs and `--output exdir` (a folder) said "cannot write exdir_0: unknown container '(no
    extension)'", a name the user never typed; `--output newdir/` (to be made) said the same of newdir."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exdir").mkdir()
    for n in ("a", "b"):
        make_clip(tmp_path / f"{n}.mp4", 3)
    argv = [a for n in ("a", "b")[:inputs] for a in ("--input", f"{n}.mp4")]
    err = _one_line(capsys, run(cli, [*argv, "--output", name, "--no-display"]), f"--output {name} names a folder")
    assert "out.mp4" in err and ("out_0.mp4, out_1.mp4" in err) == (inputs == 2), err
    assert not (tmp_path / "newdir").exists() and not list((tmp_path / "exdir").iterdir())


def test_a_folder_of_videos_with_another_input_is_refused_for_what_it_is(tmp_path, capsys):
    """It said "--input mixes photos with videos" (the folder holds no photo), or "no photos in clips"."""
    (tmp_path / "clips").mkdir()
    make_clip(tmp_path / "clips" / "a.mp4", 3)
    make_clip(tmp_path / "b.mp4", 3)
    err = _one_line(capsys, run(cli, ["--input", str(tmp_path / "clips"), "--input", str(tmp_path / "b.mp4"),
                                      "--output", str(tmp_path / "o"), "--no-display"]),
                    "is a folder of videos, which must be the only --input")
    assert "photos" not in err


@pytest.mark.parametrize("ext, codec, needle", [
    (".mp4", "mjpg", "--codec mjpg does not go into .mp4"),   # OpenCV tagged MJPEG 'mp4v': players misread it
    (".m4v", "mjpg", "--codec mjpg does not go into .m4v"),   # blamed "someone else" for the failed writer's file
    (".avi", "h264", "--codec h264 does not go into .avi"),   # a 600 fps AVI, 1180 of 1200 frames empty
])
def test_codecs_a_container_cannot_hold_are_refused(tmp_path, ext, codec, needle):
    with pytest.raises(CganError, match=needle):
        check_output(tmp_path / f"out{ext}", codec)
    assert list(tmp_path.iterdir()) == []


def test_mjpg_into_mov_is_tagged_jpeg_without_opencvs_fallback_lines(tmp_path, capfd):
    """Given MJPG for .mov, OpenCV's FFmpeg printed two lines (tag not supported, fallback to 'jpeg'), past the
    CLI's silenced OpenCV log. The writer now asks for QuickTime's own tag."""
    make_clip(tmp_path / "a.mp4", 4)
    capfd.readouterr()
    s = run_video(VideoJob(inputs=[str(tmp_path / "a.mp4")], output=str(tmp_path / "o.mov"), codec="mjpg",
                           **QUIET), translator=Invert())
    assert s.frames == 4 and probe(tmp_path / "o.mov")[0] == 4
    assert "FFMPEG" not in capfd.readouterr().err
    import av

    with av.open(str(tmp_path / "o.mov")) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"


def test_a_writer_that_fails_to_open_is_not_blamed_on_someone_else(tmp_path, monkeypatch):
    """OpenCV removes the file of a writer that fails to open; the probe's "was it swapped?" check ran first and
    said "someone else can write in ...". The writer's failure is said now."""
    import cgan.runtime.video as video_mod

    class Failing:
        def __init__(self, path, *a, **k):
            Path(path).unlink()

        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(video_mod, "_open_writer", Failing)
    with pytest.raises(CganError, match="cannot write .mp4 with codec mp4v") as e:
        check_output(tmp_path / "o.mp4", "mp4v")
    assert "someone else" not in str(e.value)


def test_a_gif_is_a_video_in_a_folder_and_not_a_photo_to_name_as_one(tmp_path, capsys):
    """A .gif in a folder of videos was skipped without a word (and a GIF-only folder had "no photos"); a GIF
    into x.png said "unknown container '.png'" instead of what the input is."""
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "a.mp4", 3)
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(3)]
    from PIL import Image

    Image.fromarray(frames[0]).save(folder / "g.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]], duration=100)
    s = run_video_folder(folder, tmp_path / "out", translator=Invert(), **QUIET)
    assert sorted(Path(v["input"]).name for v in s.videos) == ["a.mp4", "g.gif"]
    assert probe(tmp_path / "out" / "g.mp4")[0] == 3
    err = _one_line(capsys, run(cli, ["--input", str(folder / "g.gif"), "--output", str(tmp_path / "x.png"),
                                      "--no-display"]), "names a photo")
    assert "an animated GIF is read as a video" in err and "x.mp4" in err


@pytest.mark.parametrize("size, needle", [("6x6", "each side must be at least 8 pixels"),
                                          ("4x100", "each side must be at least 8 pixels"),
                                          ("7", "the long side must be at least 8 pixels")])
def test_a_size_under_the_minimum_says_the_minimum(size, needle):
    from cgan.runtime.video import parse_size

    with pytest.raises(CganError, match=needle):
        parse_size(size)


def test_a_folder_with_a_video_translated_in_part_says_so():
    from cgan.runtime.batch import FolderSummary

    ok = {"input": "a.mp4", "outputs": ["o/a.mp4"], "frames": 30, "fps": 9.0, "ended": "end",
          "streams": [{"live": False, "cut_short": None}]}
    cut = {**ok, "input": "b.mkv", "outputs": ["o/b.mkv"], "frames": 15,
           "streams": [{"live": False, "cut_short": "decoding stopped after 15 of 30 frames"}]}
    s = FolderSummary(videos=[ok, cut])
    assert s.incomplete == [cut] and not FolderSummary(videos=[ok]).incomplete
    assert "b.mkv -> o/b.mkv: 15 frames, 9.0 fps (end); CUT SHORT: decoding stopped after 15" in s.format()
