"""A folder of video files translated one after another: `cgan-video --input clips/ --output winter/`.

Each video under the folder (sub-folders too; hidden files left out) is translated by `run_video` with the same
options to the same path under the output folder (`clips/trip/a.mov` -> `winter/trip/a.mov`; containers OpenCV
or PyAV cannot write, such as .webm, become .mp4), keeping its sound and frame times. The model is loaded once.
A video that cannot be read or written is reported and the run goes on with the next; Ctrl-C finishes the
current video (a playable file) and stops. A folder of photos is cgan.runtime.photos' job; a folder holding
both is translated as photos, and its videos are named in a warning.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cgan._files import user_path, visible_files
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
    writers have (.webm, .ts, ... become .mp4: a.webm.mp4 where a.mp4 is taken; `taken` holds the outputs given
    so far, compared without case, as macOS and Windows compare names)."""
    rel = video.relative_to(folder)
    path = out / (rel if rel.suffix.lower() in CODECS else rel.with_suffix(".mp4"))
    if taken is not None:
        if path.as_posix().lower() in taken:
            path = out / rel.with_name(rel.name + ".mp4")
        taken.add(path.as_posix().lower())
    return path


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

    def format(self) -> str:
        frames = sum(v["frames"] for v in self.videos)
        lines = [f"{v['input']} -> {v['outputs'][0] if v['outputs'] else '(nothing written)'}: {v['frames']} frames, "
                 f"{v['fps']:.1f} fps ({v['ended']})" for v in self.videos]
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
    taken: set[str] = set()
    jobs = [VideoJob(inputs=[str(v)], output=str(output_for(v, folder, out, taken)), **options) for v in videos]
    _check_crf(jobs, folder)
    summary = FolderSummary()
    t0 = time.perf_counter()
    own = translator is None
    if own:
        translator = load_translator(jobs[0])  # once for all: an unknown pair or backend is said before any video
    try:
        for i, (video, job) in enumerate(zip(videos, jobs), 1):
            log.info("[%d/%d] %s -> %s", i, len(videos), video, job.output)
            try:
                s = run_video(job, translator)
            except CganError as e:  # this video cannot be read or written: the next may
                log.warning("warning: %s: %s; going on with the next video", video, e)
                summary.failed.append({"input": str(video), "error": str(e)})
                continue
            except KeyboardInterrupt:  # Ctrl-C before the video's run took its signals (opening, seeking to
                summary.ended = "interrupted"  # --start) or a second one: the folder stops with its summary
                break
            summary.videos.append({"input": str(video), **s.to_dict()})
            if s.ended in ("interrupted", "terminated", "quit"):
                summary.ended = s.ended
                break
    finally:
        if own and hasattr(translator, "close"):
            translator.close()
        summary.seconds = time.perf_counter() - t0
    return summary
