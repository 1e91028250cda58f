"""A folder of videos (`cgan-video --input clips/ --output winter/`): every video in turn, to the same path under
the output folder, the model loaded once; a video that fails is reported and the rest go on."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime import batch
from cgan.runtime.batch import find_videos, run_video_folder, video_folder
from cgan.runtime.cli import cli
from cgan.runtime.video import VideoSummary

from _helpers_video import Invert, make_clip, probe

QUIET = dict(display=False, progress=False, handle_signals=False)


def clips(root: Path) -> Path:
    """clips/a.mp4 (6 frames), clips/trip/b.avi (4, MJPG), clips/bad.mp4 (not a video), clips/.hidden.mp4"""
    folder = root / "clips"
    (folder / "trip").mkdir(parents=True)
    make_clip(folder / "a.mp4", 6)
    make_clip(folder / "trip" / "b.avi", 4, fourcc="MJPG")
    (folder / "bad.mp4").write_bytes(b"not a video at all")
    make_clip(folder / ".hidden.mp4", 2)
    return folder


def test_every_video_is_translated_to_the_same_path_and_a_bad_one_is_reported(tmp_path, caplog):
    folder, out = clips(tmp_path), tmp_path / "winter"
    with caplog.at_level(logging.WARNING):
        s = run_video_folder(folder, out, translator=Invert(), **QUIET)
    assert [Path(v["input"]).name for v in s.videos] == ["a.mp4", "b.avi"]
    assert probe(out / "a.mp4")[0] == 6 and probe(out / "trip" / "b.avi")[0] == 4
    assert [Path(f["input"]).name for f in s.failed] == ["bad.mp4"] and "cannot decode" in s.failed[0]["error"]
    assert not (out / "bad.mp4").exists() and not (out / ".hidden.mp4").exists()
    assert "going on with the next video" in caplog.text
    assert "videos 2 translated, 1 failed: 10 frames" in s.format()
    # the translation is in the files: the first frame of a.mp4 inverted
    cap = cv2.VideoCapture(str(out / "a.mp4"))
    _, got = cap.read()
    cap.release()
    src = cv2.VideoCapture(str(folder / "a.mp4"))
    _, first = src.read()
    src.release()
    assert np.abs(got.astype(int) - (255 - first.astype(int))).mean() < 6


def test_the_cli_loads_the_model_once_and_exits_1_for_a_failed_video(tmp_path, monkeypatch, capsys):
    folder, out = clips(tmp_path), tmp_path / "winter"
    loads = []
    monkeypatch.setattr(batch, "load_translator", lambda job: loads.append(job) or Invert())
    code = run(cli, ["--input", str(folder), "--output", str(out), "--no-display", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 1 and len(loads) == 1, printed.err
    assert "FAILED" in printed.out and f"{folder / 'a.mp4'} -> {out / 'a.mp4'}: 6 frames" in printed.out
    # run again: the outputs under the input folder's sibling are not taken for inputs, nor is an output inside it
    inside = folder / "out"
    code = run(cli, ["--input", str(folder), "--output", str(inside), "--no-display", "--no-progress"])
    assert code == 1 and sorted(p.name for p in inside.rglob("*.*")) == ["a.mp4", "b.avi"]
    assert [p.name for p in find_videos(folder, leave_out=inside)] == ["a.mp4", "bad.mp4", "b.avi"]


def test_containers_the_writers_lack_become_mp4_without_taking_anothers_name(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "c.mp4", 3).rename(folder / "c.webm")  # named .webm: read by content
    make_clip(folder / "c.mp4", 5)
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), **QUIET)
    assert [v["outputs"] for v in s.videos] == [[str(tmp_path / "o" / "c.mp4")], [str(tmp_path / "o" / "c.webm.mp4")]]
    assert probe(tmp_path / "o" / "c.mp4")[0] == 5 and probe(tmp_path / "o" / "c.webm.mp4")[0] == 3


@pytest.mark.parametrize("output, said", [(None, "give the folder"), ("same", "is the input folder"),
                                          ("w.mp4", "names a video file"), ("file", "is a file")])
def test_bad_outputs_are_one_line_before_anything_runs(tmp_path, output, said):
    folder = clips(tmp_path)
    target = {"same": folder, "file": tmp_path / "f.txt", None: None}.get(output, tmp_path / str(output))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(CganError, match=said):
        run_video_folder(folder, target, translator=Invert(), **QUIET)
    with pytest.raises(CganError, match="--capture applies to cameras"):
        run_video_folder(folder, tmp_path / "o", translator=Invert(), capture="720p", **QUIET)


def test_ctrl_c_ends_the_folder_after_the_current_video(tmp_path, monkeypatch):
    folder = clips(tmp_path)
    calls = []

    def interrupted(job, translator=None):
        calls.append(job.inputs[0])
        return VideoSummary(frames=2, ended="interrupted", outputs=[str(job.output)])

    monkeypatch.setattr(batch, "run_video", interrupted)
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), **QUIET)
    assert len(calls) == 1 and s.ended == "interrupted"
    code = run(cli, ["--input", str(folder), "--output", str(tmp_path / "p"), "--no-display", "--no-progress",
                     "--backend", "ort-cpu"])
    assert code == 130


def test_ctrl_c_while_a_video_is_opened_still_gives_the_folder_summary(tmp_path, monkeypatch, capsys):
    """A Ctrl-C before a video's run handles signals (opening it, seeking to --start) raises KeyboardInterrupt:
    the folder stops there and its summary lists the videos done, exit 130."""
    folder = clips(tmp_path)
    real = batch.run_video

    def second_is_interrupted(job, translator=None):
        if Path(job.inputs[0]).name != "a.mp4":
            raise KeyboardInterrupt
        return real(job, translator)

    monkeypatch.setattr(batch, "run_video", second_is_interrupted)
    monkeypatch.setattr(batch, "load_translator", lambda job: Invert())
    code = run(cli, ["--input", str(folder), "--output", str(tmp_path / "o"), "--no-display", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 130 and f"{folder / 'a.mp4'} -> {tmp_path / 'o' / 'a.mp4'}: 6 frames" in printed
    assert "videos 1 translated, 0 failed: 6 frames" in printed and "(interrupted)" in printed


def test_a_folder_with_photos_is_photos_and_its_videos_are_named(tmp_path, caplog, capsys):
    folder = tmp_path / "roll"
    folder.mkdir()
    cv2.imwrite(str(folder / "p.png"), np.full((16, 16, 3), 90, np.uint8))
    make_clip(folder / "v.mp4", 2)
    assert video_folder([str(folder)]) is None and video_folder([str(clips(tmp_path))]) == tmp_path / "clips"
    with caplog.at_level(logging.WARNING):
        code = run(cli, ["--input", str(folder), "--output", str(tmp_path / "o"), "--no-progress",
                         "--backend", "ort-cpu"])
    assert code == 0 and (tmp_path / "o" / "p.png").exists() and not (tmp_path / "o" / "v.mp4").exists()
    assert "also holds 1 video (e.g. v.mp4), left out" in caplog.text


def test_crf_for_a_folder_with_videos_it_cannot_apply_to_is_one_line_before_anything_runs(tmp_path):
    """clips/trip/b.avi stays .avi (MJPG): --crf would fail it alone, after the others were translated."""
    folder = clips(tmp_path)
    with pytest.raises(CganError, match=r"--crf sets H.264's quality, but b.avi \(1 of the 3 videos in .*\) is "
                                        r"written as MJPG"):
        run_video_folder(folder, tmp_path / "out", translator=Invert(), crf=18, **QUIET)
    assert not (tmp_path / "out").exists()
    (folder / "trip" / "b.avi").unlink()
    s = run_video_folder(folder, tmp_path / "out", translator=Invert(), crf=18, **QUIET)
    assert [Path(v["input"]).name for v in s.videos] == ["a.mp4"] and len(s.failed) == 1  # bad.mp4


def test_an_output_folder_inside_the_input_holding_videos_is_refused(tmp_path, caplog):
    """clips/sub held clips/sub/a.mp4: left out as input (it is the output) and replaced by clips/a.mp4's
    translation, exit 0. An output folder inside the input that holds no videos is still fine, with a warning
    (a later run over the input folder with another --output would translate the translations)."""
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    make_clip(folder / "a.mp4", 3)
    make_clip(folder / "sub" / "a.mp4", 2)
    before = (folder / "sub" / "a.mp4").read_bytes()
    make_clip(folder / "sub" / "keep.mov", 2)
    with pytest.raises(CganError, match=r"--output .*sub is inside the input folder and holds videos that are not "
                                        r"translations of its videos \(e.g. .*keep.mov\)"):
        run_video_folder(folder, folder / "sub", translator=Invert(), **QUIET)
    assert (folder / "sub" / "a.mp4").read_bytes() == before
    for _ in range(2):  # the same run again: its own earlier translations are replaced, not refused
        caplog.clear()
        s = run_video_folder(folder, folder / "winter", translator=Invert(), **QUIET)
        assert "inside the input folder: this run leaves it out, but a run over" in caplog.text
        assert [Path(v["input"]).relative_to(folder).as_posix() for v in s.videos] == \
            ["a.mp4", "sub/a.mp4", "sub/keep.mov"]


def test_an_output_folder_above_the_input_that_would_replace_an_input_video_is_refused(tmp_path, caplog):
    """--input w/clips --output w: w/clips/clips/a.mp4's translation goes to w/clips/a.mp4, an input video (it
    was replaced, or read after it had been, exit 0). Refused before anything runs; without a clash the same
    layout is fine."""
    w = tmp_path / "w"
    (w / "clips" / "clips").mkdir(parents=True)
    make_clip(w / "clips" / "a.mp4", 3)
    make_clip(w / "clips" / "clips" / "A.mp4", 2)  # (case folded, as on macOS and Windows)
    before = (w / "clips" / "a.mp4").read_bytes()
    with pytest.raises(CganError, match=r"--output .*w: the translation of .*clips/clips/A.mp4 would replace the "
                                        r"input video .*clips/a.mp4; choose an output folder that does not hold"):
        run_video_folder(w / "clips", w, translator=Invert(), **QUIET)
    assert (w / "clips" / "a.mp4").read_bytes() == before
    (w / "clips" / "clips" / "A.mp4").rename(w / "clips" / "clips" / "b.mp4")
    s = run_video_folder(w / "clips", w, translator=Invert(), **QUIET)
    assert len(s.videos) == 2 and (w / "a.mp4").exists() and (w / "clips" / "b.mp4").exists()
    assert (w / "clips" / "a.mp4").read_bytes() == before


def test_a_video_that_keeps_its_container_keeps_its_name(tmp_path):
    """a.3gp sorts before a.mp4 and took out/a.mp4 (a.mp4 became a.mp4.mp4); x.ts became x.mp4 where a folder
    x.mp4/ goes, and failed."""
    folder = tmp_path / "clips"
    (folder / "x.mp4").mkdir(parents=True)
    for name in ("a.3gp", "a.mp4", "a.webm.mp4", "x.ts", "x.mp4/y.mp4"):
        make_clip(folder / "tmp.mp4", 2).rename(folder / name)
    videos = find_videos(folder)
    got = {v.relative_to(folder).as_posix(): o.relative_to(tmp_path / "o").as_posix()
           for v, o in zip(videos, batch.outputs_for(videos, folder, tmp_path / "o"))}
    assert got == {"a.3gp": "a.3gp.mp4", "a.mp4": "a.mp4", "a.webm.mp4": "a.webm.mp4", "x.ts": "x.ts.mp4",
                   "x.mp4/y.mp4": "x.mp4/y.mp4"}


def test_a_fifo_among_the_videos_is_left_out_not_waited_for(tmp_path):
    import os

    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "b.mp4", 3)
    os.mkfifo(folder / "a.mp4")
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), **QUIET)
    assert [Path(v["input"]).name for v in s.videos] == ["b.mp4"]
    assert [Path(f["input"]).name for f in s.failed] == ["a.mp4"] and s.failed[0]["error"].startswith("not a regular")


def test_what_would_fail_every_video_is_one_line_before_the_model_loads(tmp_path, monkeypatch):
    from cgan.runtime import video

    folder = clips(tmp_path)
    monkeypatch.setattr(batch, "load_translator", lambda job: pytest.fail("the model was loaded"))
    with pytest.raises(CganError, match="--virtual-camera shows one stream"):
        run_video_folder(folder, tmp_path / "o", virtual_camera="auto", **QUIET)
    monkeypatch.setattr(video, "gui_problem", lambda: "no display here")
    with pytest.raises(CganError, match="--display: no display here"):
        run_video_folder(folder, tmp_path / "o", display=True, progress=False, handle_signals=False)
    (tmp_path / "f").write_text("x")
    with pytest.raises(CganError, match="not a folder"):
        run_video_folder(folder, tmp_path / "f" / "o", **QUIET)


def test_a_problem_with_one_videos_output_fails_that_video_only(tmp_path):
    """The up-front check looked at the first video's output: a folder where out/a.mp4 goes refused the whole
    folder (one video failed before)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "a.mp4", 3)
    make_clip(folder / "b.mp4", 3)
    (tmp_path / "o" / "a.mp4").mkdir(parents=True)
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), **QUIET)
    assert [Path(f["input"]).name for f in s.failed] == ["a.mp4"] and [Path(v["input"]).name for v in s.videos] == \
        ["b.mp4"]


def test_a_sigterm_during_a_video_ends_it_as_before_with_the_library_default(tmp_path):
    """With handle_signals None (the library's default) the folder's own SIGTERM handler looked like an app's to
    run_video, which then left SIGTERM alone: the stop came as an exception, and the video's summary was lost."""
    import os
    import signal

    folder = tmp_path / "clips"
    folder.mkdir()
    make_clip(folder / "a.mp4", 30)
    make_clip(folder / "b.mp4", 3)

    class TermAtThirdBatch(Invert):
        def translate_batch(self, frames):
            if len(self.batches) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().translate_batch(frames)

    s = run_video_folder(folder, tmp_path / "o", translator=TermAtThirdBatch(), display=False, progress=False)
    assert s.ended == "terminated" and [Path(v["input"]).name for v in s.videos] == ["a.mp4"]
    # the video's own summary (how many frames made it out before the stop depends on the queues: not checked)
    assert "streams" in s.videos[0] and s.videos[0]["ended"] == "terminated" and s.videos[0]["frames"] < 30


def test_a_signal_between_two_videos_still_gives_the_summary(tmp_path):
    """A SIGTERM while the next video was announced (outside the per-video try) escaped with no summary."""
    import os
    import signal

    folder = clips(tmp_path)

    class TermOnSecond(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("[2/"):
                os.kill(os.getpid(), signal.SIGTERM)

    handler = TermOnSecond(level=logging.INFO)
    logger = logging.getLogger("cgan.runtime.batch")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        s = run_video_folder(folder, tmp_path / "o", translator=Invert(), display=False, progress=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert s.ended == "terminated" and [Path(v["input"]).name for v in s.videos] == ["a.mp4"]


def test_sigterm_between_videos_stops_the_folder_with_its_summary(tmp_path, monkeypatch):
    """SIGTERM while the next video was opened (before its run set its handlers) killed the process: no summary,
    no exit 143."""
    import os
    import signal

    folder = clips(tmp_path)
    real = batch.run_video

    def term_on_the_second(job, translator=None):
        if Path(job.inputs[0]).name != "a.mp4":
            os.kill(os.getpid(), signal.SIGTERM)
        return real(job, translator)

    monkeypatch.setattr(batch, "run_video", term_on_the_second)
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), display=False, progress=False)
    assert s.ended == "terminated" and [Path(v["input"]).name for v in s.videos] == ["a.mp4"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_video_stopped_by_a_second_ctrl_c_is_listed(tmp_path, monkeypatch):
    """A second Ctrl-C: the video's run finalizes what it wrote and raises; the folder summary left it out."""
    folder = clips(tmp_path)
    real = batch.run_video

    def second_ctrl_c(job, translator=None):
        real(job, translator)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_video", second_ctrl_c)
    s = run_video_folder(folder, tmp_path / "o", translator=Invert(), **QUIET)
    assert s.ended == "interrupted" and s.videos == [
        {"input": str(folder / "a.mp4"), "outputs": [str(tmp_path / "o" / "a.mp4")], "frames": 6, "fps": 0.0,
         "ended": "interrupted"}]
