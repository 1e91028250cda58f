"""A folder of video files translated one after another: `cgan-video --input clips/ --output winter/`.

Each video under the folder (sub-folders too; hidden files left out) is translated by `run_video` with the same
options to the same path under the output folder (`clips/trip/a.mov` -> `winter/trip/a.mov`; containers OpenCV
or PyAV cannot write, such as .webm, become .mp4), keeping its sound and frame times. The model is loaded once.
A video that cannot be read or written is reported and the run goes on with the next; Ctrl-C finishes the
current video (a playable file) and stops. A folder of photos is cgan.runtime.photos' job; a folder holding
both is translated as photos, and its videos are named in a warning.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import stat
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from cgan._files import path_key, user_path, visible_files
from cgan.errors import CganError
from cgan.runtime.video import CODECS, H264, VIDEO_EXTS, VideoJob, crf_refusal, load_translator, output_codec, \
    run_video

log = logging.getLogger(__name__)


def find_videos(folder: Path, leave_out: Path | None = None) -> list[Path]:
    """The video files under `folder` (by extension; hidden files and folders left out, symlinked folders not
    entered, nothing under `leave_out`), sorted by their path relative to it."""
    return sorted((f for f in visible_files(folder, leave_out=leave_out) if f.suffix.lower() in VIDEO_EXTS),
                  key=lambda f: f.relative_to(folder).as_posix())


def video_folder(inputs: Any) -> Path | None:
    """The folder when `inputs` is one existing folder holding video files and no photos (a folder with photos
    is translated as photos), else None. One look at its files, which ends at the first photo."""
    from cgan.runtime.photos import reads_photo

    if len(inputs) != 1 or not isinstance(inputs[0], (str, os.PathLike)):
        return None
    folder = user_path(inputs[0])
    if not folder.is_dir():
        return None
    has_video = False
    for f in visible_files(folder):
        if reads_photo(f.suffix):
            return None
        has_video = has_video or f.suffix.lower() in VIDEO_EXTS
    return folder if has_video else None


def output_for(video: Path, folder: Path, out: Path, taken: set[str] | None = None) -> Path:
    """Where the translation of `video` (under `folder`) goes: the same path under `out`, in a container the
    writers have (.webm, .ts, ... become .mp4: a.webm.mp4 where a.mp4 is taken, then a.webm.2.mp4 ...; `taken`
    holds the names not free, compared without case, as macOS and Windows compare names). See outputs_for."""
    rel = video.relative_to(folder)
    kept = rel.suffix.lower() in CODECS
    first = [rel] if kept else [rel.with_suffix(".mp4"), rel.with_name(rel.name + ".mp4")]
    if taken is None:
        return out / first[0]
    more = (rel.with_name(f"{rel.name}.{k}{rel.suffix if kept else '.mp4'}") for k in range(2, 1000))
    for candidate in itertools.chain(first, more):  # (made one by one: most videos take the first)
        key = candidate.as_posix().lower()
        if key not in taken:
            taken.add(key)
            return out / candidate
    raise CganError(f"no free output name for {video} under {out}")  # (a thousand videos of one name)


def outputs_for(videos: list[Path], folder: Path, out: Path) -> list[Path]:
    """output_for of each of `videos`, with the videos that keep their container named first (a.3gp, sorted
    before a.mp4, took out/a.mp4 and a.mp4 became a.mp4.mp4), and no name where an output folder goes (x.ts as
    x.mp4 beside a folder x.mp4/)."""
    rels = [v.relative_to(folder) for v in videos]
    taken = {parent.as_posix().lower() for rel in rels for parent in rel.parents if parent != Path(".")}
    order = sorted(range(len(videos)), key=lambda i: rels[i].suffix.lower() not in CODECS)  # (stable)
    paths: list[Path | None] = [None] * len(videos)
    for i in order:
        paths[i] = output_for(videos[i], folder, out, taken)
    return [p for p in paths if p is not None]


def _check_crf(jobs: list[VideoJob], folder: Path) -> None:
    """A --crf (H.264's quality) refused before anything is translated when some outputs are not H.264 (an .avi
    stays .avi, written as MJPG; --codec mp4v): one line for the folder, not one failure per video."""
    if not jobs or jobs[0].crf is None:
        return
    other = [Path(j.output) for j in jobs if output_codec(Path(j.output), j.codec) != H264]
    if other:
        more = (f" ({len(other)} of the {len(jobs)} videos in {folder} are like it)" if len(other) > 1
                else f" (1 of the {len(jobs)} videos in {folder})")
        raise CganError(crf_refusal(other[0], output_codec(other[0], jobs[0].codec), jobs[0].codec, more))


@dataclass
class FolderSummary:
    """What a folder run did: one entry per video translated (its run's summary, with `input`), and the videos
    that failed, with why. `ended` as VideoSummary's (interrupted / terminated stop the folder)."""

    videos: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    ended: str = "end"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def incomplete(self) -> list[dict[str, Any]]:
        """The videos translated only in part (a stream cut short: VideoSummary.incomplete)."""
        return [v for v in self.videos if any(st.get("cut_short") for st in v.get("streams", ()))]

    def format(self) -> str:
        frames = sum(v["frames"] for v in self.videos)
        lines = [f"{v['input']} -> {v['outputs'][0] if v['outputs'] else '(nothing written)'}: {v['frames']} frames, "
                 f"{v['fps']:.1f} fps ({v['ended']})" + "".join(f"; CUT SHORT: {st['cut_short']}"
                                                               for st in v.get("streams", ()) if st.get("cut_short"))
                 for v in self.videos]
        lines += [f"FAILED {f['input']}: {f['error']}" for f in self.failed]
        lines.append(f"videos {len(self.videos)} translated, {len(self.failed)} failed: {frames} frames in "
                     f"{self.seconds:.1f} s ({self.ended})")
        return "\n".join(lines)


def run_video_folder(folder: str | os.PathLike, output: str | os.PathLike | None, translator: Any = None,
                     **options: Any) -> FolderSummary:
    """Translate every video under `folder` into the folder `output` (see the module); `options` are VideoJob's
    (pair, direction, size, codec, sound, max_frames per video, ...). One-line CganError for a bad folder or
    output before anything is translated."""
    folder = Path(os.path.expanduser(os.fspath(folder)))
    if options.get("capture") is not None:
        raise CganError("--capture applies to cameras and capture devices; the input is a folder of videos (leave "
                        "it out)")
    if output is None:
        raise CganError(f"--output: give the folder the translations of the videos in {folder} go to")
    out = Path(os.path.expanduser(os.fspath(output)))
    if out.suffix.lower() in VIDEO_EXTS and not out.is_dir():
        raise CganError(f"--output {out} names a video file, but {folder} is a folder of videos: give a folder")
    if out.exists() and not out.is_dir():
        raise CganError(f"--output {out} is a file: give the folder the translations go to")
    if out.resolve() == folder.resolve():
        raise CganError(f"--output is the input folder {folder}: the translations would replace the videos; give "
                        f"another folder")
    videos = find_videos(folder, leave_out=out)
    if not videos:
        raise CganError(f"no videos in {folder} ({', '.join(sorted(VIDEO_EXTS))}; hidden files left out)")
    outputs = outputs_for(videos, folder, out)
    inputs = {path_key(v): v for v in videos}
    for v, o in zip(videos, outputs):  # an output folder above the input folder (clips/clips/a.mp4 -> clips/a.mp4)
        if path_key(o) in inputs:
            raise CganError(f"--output {out}: the translation of {v} would replace the input video "
                            f"{inputs[path_key(o)]}; choose an output folder that does not hold {folder}")
    if out.is_dir() and folder.resolve() in out.resolve().parents:
        # an output folder inside the input folder is not read as input: a video in it that is not the
        # translation of one of the inputs (an earlier run's) would be neither translated nor kept
        planned = {o.relative_to(out).as_posix().lower() for o in outputs}
        own = [v for v in find_videos(out) if v.relative_to(out).as_posix().lower() not in planned]
        if own:
            raise CganError(f"--output {out} is inside the input folder and holds videos that are not translations "
                            f"of its videos (e.g. {own[0]}): they would be left out; choose a folder outside {folder}")
    if folder.resolve() in out.resolve().parents:
        log.warning("warning: --output %s is inside the input folder: this run leaves it out, but a run over %s with "
                    "another --output would translate these translations too", out, folder)
    jobs = [VideoJob(inputs=[str(v)], output=str(o), **options) for v, o in zip(videos, outputs)]
    _check_crf(jobs, folder)
    _check_once(jobs[0], out)
    summary = FolderSummary()
    t0 = time.perf_counter()
    own = translator is None
    terminated: list[bool] = []
    current: tuple[Path, VideoJob, float] | None = None  # the video under way, until its summary is in
    try:
        with _terminate_as_interrupt(terminated, jobs[0].handle_signals):
            try:
                if own:  # once for all: an unknown pair or backend is said before any video
                    translator = load_translator(jobs[0])
                for i, (video, job) in enumerate(zip(videos, jobs), 1):
                    current = (video, job, time.time())
                    log.info("[%d/%d] %s -> %s", i, len(videos), video, job.output)
                    try:
                        if not stat.S_ISREG(os.stat(video).st_mode):  # a FIFO or device: opening it waits forever
                            raise CganError("not a regular file (a FIFO or a device): left out")
                        s = run_video(job, translator)
                    except (CganError, OSError) as e:  # this video cannot be read or written: the next may
                        why = str(e) if isinstance(e, CganError) else (
                            f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
                        log.warning("warning: %s: %s; going on with the next video", video, why)
                        summary.failed.append({"input": str(video), "error": why})
                        current = None
                        continue
                    summary.videos.append({"input": str(video), **s.to_dict()})
                    current = None
                    if s.ended in ("interrupted", "terminated", "quit"):
                        summary.ended = s.ended
                        break
            except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) outside a video's run (loading, opening, seeking to
                # --start, between videos) or a second one: the folder stops with its summary, and what the video
                # under way finalized before it stopped is listed with it
                summary.ended = "terminated" if terminated else "interrupted"
                if current is not None:
                    _note_partial(summary, current[0], Path(current[1].output), current[2])
    finally:
        if own and translator is not None and hasattr(translator, "close"):
            translator.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _check_once(job: VideoJob, out: Path) -> None:
    """What would fail every video the same way, said once before the model is loaded: an output folder that
    cannot be written, --display without a window system, --virtual-camera (one stream). What concerns one
    video's output (a folder where it goes) stays that video's failure."""
    from cgan._files import check_folder_target
    from cgan.runtime.video import gui_problem

    if job.virtual_camera is not None:
        raise CganError("--virtual-camera shows one stream: give it one video, not a folder of videos")
    if job.display and (problem := gui_problem()):
        raise CganError(f"--display: {problem}")
    check_folder_target(out, "--output")


@contextlib.contextmanager
def _terminate_as_interrupt(terminated: list[bool], handle: bool | None) -> Iterator[None]:
    """Between videos (opening the next, seeking to --start) SIGTERM had its default action: the process died
    without its summary. Here it stops the folder as Ctrl-C does (`terminated` gets an entry); each video's run
    sets its own handlers while it translates."""
    if handle is False or threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:  # (an app's own handler stays in force)
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        terminated.append(True)
        raise KeyboardInterrupt

    stop.cgan_folder = True  # type: ignore[attr-defined]  (run_video takes SIGTERM over while a video runs)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _note_partial(summary: FolderSummary, video: Path, output: Path, since: float) -> None:
    """A video whose run was stopped by a second Ctrl-C finalizes what it wrote: list it (it was left out)."""
    try:
        if output.stat().st_mtime < since:
            return  # (an older file of that name: not written by this run)
    except OSError:
        return
    import cv2

    cap = cv2.VideoCapture(str(output))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    cap.release()
    summary.videos.append({"input": str(video), "outputs": [str(output)], "frames": frames, "fps": 0.0,
                           "ended": summary.ended})
