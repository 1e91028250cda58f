"""Photos: a photo file or a folder of photos in, translated photo files out -- the official repo's test.py job,
but at each photo's own size and on any backend. `cgan-video` switches to this when its inputs are photos:

    cgan-video --input photos/ --output winter/           # every photo under photos/: same names and formats
    cgan-video --input beach.jpg --output beach_winter.png

Reading, translating and writing overlap (a reader and a writer thread around the translation, bounded queues).
Each output goes to a temporary file beside it and is renamed once complete, so an interrupted run never leaves a
half-written photo under its name. A photo that cannot be read or translated (corrupt, too large) is named in a
warning and in the summary and the run goes on; one that cannot be written (disk full, folder gone) ends the run.

Photos are decoded as OpenCV's IMREAD_COLOR does: EXIF orientation applied, 16-bit scaled to 8, gray made BGR.
A PNG's alpha channel is kept when the output format can hold one (PNG, WebP, TIFF). Metadata (EXIF) is not
copied. No torch here.
"""
from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any, Sequence

import cv2
import numpy as np

from cgan._files import IMAGE_EXTS, nearest_existing, write_bytes_atomic
from cgan._images import declared_size, png_has_alpha
from cgan._limits import MAX_DECODE_PIXELS
from cgan.errors import CganError
from cgan.runtime.frames import DEFAULT_MAX_PIXELS, MULTIPLE, round_up
from cgan.runtime.sources import DEMO, _describe
from cgan.runtime.video import (_handled_signals, _signals, _signals_deferred, load_translator, parse_size,
                                target_size)

log = logging.getLogger(__name__)

#: photo extensions read (as the trainer reads)
PHOTO_EXTS = IMAGE_EXTS
#: input extensions written in another format: OpenCV has no .jfif writer, and PGM/PBM hold only gray
WRITE_AS = {".jfif": ".jpg", ".pgm": ".png", ".pbm": ".png"}
#: output formats that keep an alpha channel
ALPHA_EXTS = (".png", ".webp", ".tif", ".tiff")
#: encoder settings (OpenCV's defaults otherwise): JPEG and WebP at quality 95
ENCODE_PARAMS = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
                 ".jpe": [cv2.IMWRITE_JPEG_QUALITY, 95], ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}
QUEUE_SIZE = 4
_END = object()


class PhotoProblem(Exception):
    """One photo that cannot be read or translated; the run names it and goes on."""


# ---- job and summary -------------------------------------------------------------------------------------
@dataclass
class PhotoJob:
    """Translate photos: `inputs` are photo files and/or folders (read recursively; hidden files and folders
    skipped), `output` a photo file (one photo in) or a folder (created; each photo keeps its path relative to
    its input folder, its name and its format). See docs/video.md, "Photos"."""

    inputs: Sequence[str | os.PathLike] = ()
    output: str | os.PathLike | None = None
    pair: str = "summer2winter"
    direction: str | None = None
    size: str = "native"                  # native, 720p, WxH, or N (long side), as cgan-video --size
    side_by_side: bool = False            # write input | output next to each other
    max_photos: int | None = None         # translate at most this many (in the order listed)
    backend: str = "auto"
    precision: str | None = None
    compile: bool = False                 # torch backend: torch.compile (compiles once per photo size)
    cuda_graphs: bool | None = None
    progress: bool = True                 # tqdm bar on stderr
    # SIGINT/SIGTERM stop after the photo being translated (summary.ended "interrupted"/"terminated"); None:
    # each one the app has no Python handler for; True: both (the CLI); False: none
    handle_signals: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.inputs, (str, os.PathLike)):
            self.inputs = (self.inputs,)
        try:
            self.inputs = tuple(self.inputs)
        except TypeError:
            raise CganError(f"inputs must be photo files or folders (str or path), got {_describe(self.inputs)}") \
                from None
        for value in self.inputs:
            if not _text(value):
                raise CganError(f"each input must be a photo file or a folder (a non-empty str or path), got "
                                f"{_describe(value)}")
        if self.output is not None and not _text(self.output):
            raise CganError(f"output must be a photo file or a folder (a non-empty str or path), got "
                            f"{_describe(self.output)}")
        for name in ("side_by_side", "compile", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise CganError(f"{name} must be True or False, got {_describe(getattr(self, name))}")
        for name in ("cuda_graphs", "handle_signals"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), bool):
                raise CganError(f"{name} must be True, False or None, got {_describe(getattr(self, name))}")
        for name, none_ok in (("pair", False), ("direction", True), ("size", False), ("backend", False),
                              ("precision", True)):
            value = getattr(self, name)
            if name == "pair" and isinstance(value, os.PathLike):
                continue
            if not (isinstance(value, str) or (value is None and none_ok)):
                raise CganError(f"{name} must be a str{' or None' if none_ok else ''}, got {_describe(value)}")
        m = self.max_photos
        if m is not None and (not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 1):
            raise CganError(f"max_photos must be a whole number >= 1 or None, got {_describe(m)}")


@dataclass
class PhotoSummary:
    """What a run did. Stage times are the mean per photo of that stage's busy time; `seconds` is wall time."""

    photos: int = 0                       # written
    failed: list[dict[str, str]] = field(default_factory=list)   # {"input": path, "reason": why}
    seconds: float = 0.0
    read_ms: float = 0.0
    translate_ms: float = 0.0
    write_ms: float = 0.0
    ended: str = "end"                    # end | interrupted | terminated
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        rate = f"{self.photos / self.seconds:.1f} photos/s; " if self.seconds > 0 and self.photos else ""
        lines = [f"photos {self.photos}  failed {len(self.failed)}  ({self.ended}, {self.seconds:.1f} s)",
                 f"{rate}per photo: read {self.read_ms:.0f} ms  translate {self.translate_ms:.0f} ms  "
                 f"write {self.write_ms:.0f} ms"]
        if self.failed:
            shown = ", ".join(f"{f['input']} ({f['reason']})" for f in self.failed[:3])
            more = f" and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            lines.append(f"not translated: {shown}{more}")
        if self.photos:
            lines.append(f"wrote {self.output}")
        return "\n".join(lines)


def _text(value: object) -> bool:
    return (isinstance(value, (str, os.PathLike)) and isinstance(os.fspath(value), str)
            and bool(os.fspath(value).strip()))


def _path(value: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(os.fspath(value).strip()))


# ---- what is translated, and where it goes ---------------------------------------------------------------
def is_photo_input(value: object) -> bool:
    """True for an --input that names photos: an existing folder, or a name with a photo extension (.jpg, .png,
    ...). Camera indices, devices, URLs, 'demo' and video files are not."""
    if not _text(value):
        return False
    s = os.fspath(value).strip()  # type: ignore[arg-type]
    if s == DEMO or s.isdecimal() or "://" in s or s.startswith("/dev/"):
        return False
    p = _path(s)
    return p.is_dir() or p.suffix.lower() in PHOTO_EXTS


def written_suffix(suffix: str) -> str:
    """The extension a photo with `suffix` is written with (its own, unless OpenCV cannot write it in colour)."""
    return WRITE_AS.get(suffix.lower(), suffix)


def _walk(folder: Path) -> list[Path]:
    """The photos under `folder` (recursively; hidden files and folders left out, symlinked folders not entered),
    sorted by their path relative to it."""
    found = []
    for root, dirs, files in os.walk(folder, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in PHOTO_EXTS:
                found.append(Path(root) / name)
    return sorted(found, key=lambda f: f.relative_to(folder).as_posix())


def _raise(e: OSError) -> None:
    raise CganError(f"cannot read the folder {e.filename}: {e.strerror or e}") from None


def find_photos(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, PurePath, bool]]:
    """(photo, its path relative to the output folder, whether it came from a folder) for each photo the inputs
    name, in order. One-line CganError for a missing input, a folder without photos, a file of another kind."""
    items: list[tuple[Path, PurePath, bool]] = []
    for value in inputs:
        p = _path(value)
        if p.is_dir():
            found = _walk(p)
            if not found:
                raise CganError(f"no photos in {p} ({', '.join(PHOTO_EXTS)}, hidden files left out)")
            items += [(f, f.relative_to(p), True) for f in found]
        elif p.is_file():
            if p.suffix.lower() not in PHOTO_EXTS:
                raise CganError(f"--input {p} is not a photo ({', '.join(PHOTO_EXTS)}); videos, cameras and "
                                f"streams go in a run of their own")
            items.append((p, PurePath(p.name), False))
        elif os.path.lexists(p):
            raise CganError(f"--input {p} is neither a photo file nor a folder")
        else:
            raise CganError(f"input file not found: {p}")
    return items


def plan_outputs(inputs: Sequence[str | os.PathLike], output: str | os.PathLike | None,
                 items: list[tuple[Path, PurePath, bool]]) -> tuple[list[tuple[Path, Path]], Path]:
    """(photo, output file) pairs and the output as given (a file or a folder). Refuses, with one line, an output
    that would overwrite an input, a folder inside an input folder, two photos written to one name, an output
    file for several photos, and a format OpenCV cannot write."""
    if output is None:
        raise CganError("photos need --output: a photo file for one photo (e.g. winter.jpg) or a folder")
    out = _path(output)
    one_file = len(items) == 1 and not items[0][2]
    wants_file = out.suffix.lower() in PHOTO_EXTS and not out.is_dir() and not os.fspath(output).endswith(("/", os.sep))
    if wants_file:
        if not one_file:
            what = "a folder" if any(folder for *_, folder in items) else f"{len(items)} photos"
            raise CganError(f"--output {out} names one photo, but the input is {what}: give an output folder")
        if not cv2.haveImageWriter(str(out)) or out.suffix.lower() in WRITE_AS:
            raise CganError(f"cannot write {out.suffix} photos: name the output .jpg, .png, .webp, .tif or .bmp")
        plan = [(items[0][0], out)]
    else:
        if os.path.lexists(out) and not out.is_dir():
            raise CganError(f"--output {out} is a file, not a folder; give a folder for the translated photos")
        plan = [(src, out / rel.with_suffix(written_suffix(rel.suffix))) for src, rel, _ in items]
        for value in inputs:
            folder = _path(value)
            if folder.is_dir() and _within(out, folder):
                raise CganError(f"--output {out} is inside the input folder {folder}: a later run would translate "
                                f"the translations; choose a folder outside it")
    sources = {_key(src): src for src, _ in plan}
    seen: dict[Path, Path] = {}
    for src, dst in plan:
        if _key(dst) in sources:
            raise CganError(f"--output would overwrite the input photo {sources[_key(dst)]}; choose another "
                            f"--output")
        if dst in seen:
            raise CganError(f"{seen[dst]} and {src} would both be written to {dst}; rename one, or translate them "
                            f"in separate runs")
        seen[dst] = src
    _check_writable(out.parent if wants_file else out)
    return plan, out


def _key(p: Path) -> str:
    return os.path.normcase(os.path.realpath(p))


def _within(path: Path, folder: Path) -> bool:
    a, b = _key(path), _key(folder)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def _check_writable(folder: Path) -> None:
    """Creating nothing, check that `folder` could be made or written (one line if not)."""
    anc = nearest_existing(folder if str(folder) else Path("."))
    if not anc.is_dir():
        raise CganError(f"cannot create the output folder {folder}: {anc} is not a folder; choose another --output")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise CganError(f"the output folder {folder} is not writable ({anc}); choose another --output")


# ---- reading and writing one photo -----------------------------------------------------------------------
def read_photo(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """A photo as (BGR uint8 HxWx3 with its EXIF orientation applied, its alpha channel HxW uint8 or None).
    PhotoProblem (a short reason) for a file that is unreadable, empty, not an image, or declares more than
    MAX_DECODE_PIXELS pixels (not decoded: a tiny PNG can declare gigabytes)."""
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as e:
        raise PhotoProblem(f"cannot be read: {e.strerror or e}") from None
    if data.size == 0:
        raise PhotoProblem("empty file")
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS:
        raise PhotoProblem(f"declares {size[0]}x{size[1]} pixels, over the {MAX_DECODE_PIXELS // 10**6}-megapixel "
                           f"limit")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # e.g. over OpenCV's own pixel limit
        img = None
    if img is None or img.size == 0:
        raise PhotoProblem("not a readable image")
    alpha = None
    if png_has_alpha(data):
        full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if full is not None and full.ndim == 3 and full.shape[2] in (2, 4) and full.shape[:2] == img.shape[:2]:
            a = full[:, :, -1]
            alpha = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8) if a.dtype == np.uint16 else a
            alpha = np.ascontiguousarray(alpha)
    return img, alpha


def encode_photo(img: np.ndarray, suffix: str) -> bytes:
    """`img` (BGR or BGRA uint8) as the bytes of a `suffix` file (JPEG/WebP quality 95)."""
    ok, buf = cv2.imencode(suffix.lower(), img, ENCODE_PARAMS.get(suffix.lower(), []))
    if not ok:
        raise CganError(f"OpenCV could not encode a {img.shape[1]}x{img.shape[0]} photo as {suffix}")
    return buf.tobytes()


# ---- the run -----------------------------------------------------------------------------------------------
class _Run:
    """State shared by the reader, the translation (the caller's thread) and the writer; the attributes the
    video pipeline's signal handler sets (stop, signals, ended) have the same meaning here."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.stop = threading.Event()
        self.consumer_gone = threading.Event()  # the translation loop no longer takes what the reader reads
        self.signals = 0
        self.ended = "end"
        self.errors: list[BaseException] = []
        self.failed: list[dict[str, str]] = []
        self.written = 0
        self.read_s = self.translate_s = self.write_s = 0.0
        self.n_tried = self.n_translated = 0
        self.lock = threading.Lock()

    def fail(self, src: Path, reason: str) -> None:
        log.warning("warning: %s: %s; skipped", src, reason)
        with self.lock:
            self.failed.append({"input": str(src), "reason": reason})
            if self.bar is not None:
                self.bar.update(1)

    def give_to_translation(self, q: queue.Queue, item: Any) -> bool:
        """The reader's put: False once the translation loop has ended (it would never take the item)."""
        while not self.consumer_gone.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False


def _reader(run: _Run, plan: list[tuple[Path, Path]], q: queue.Queue) -> None:
    try:
        for src, dst in plan:
            if run.stop.is_set():
                break
            t0 = time.perf_counter()
            run.n_tried += 1
            try:
                img, alpha = read_photo(src)
            except PhotoProblem as e:
                run.fail(src, str(e))
                continue
            finally:
                run.read_s += time.perf_counter() - t0
            if not run.give_to_translation(q, (src, dst, img, alpha)):
                break
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
        run.errors.append(e)
        run.stop.set()
    finally:
        run.give_to_translation(q, _END)


def _writer(run: _Run, q: queue.Queue) -> None:
    """Write what the translation hands over until _END; after an error, take and drop the rest (the main
    thread's puts must never block on a full queue)."""
    while True:
        item = q.get()
        if item is _END:
            return
        if run.errors:
            continue
        dst, img = item
        t0 = time.perf_counter()
        try:
            write_bytes_atomic(dst, encode_photo(img, dst.suffix), sync=False)
            run.write_s += time.perf_counter() - t0
            run.written += 1
            if run.bar is not None:
                run.bar.update(1)
        except OSError as e:
            run.errors.append(CganError(f"cannot write {dst}: {e.strerror or e}; {run.written} photos were written "
                                        f"before it (free space, or choose another --output)"))
            run.stop.set()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            run.errors.append(e)
            run.stop.set()


def _translate_one(translator: Any, size: tuple[str, Any], img: np.ndarray, alpha: np.ndarray | None,
                   side_by_side: bool, suffix: str, max_pixels: int) -> np.ndarray:
    h, w = img.shape[:2]
    tw, th = target_size(w, h, size)
    pw, ph = round_up(tw), round_up(th)
    if pw * ph > max_pixels:
        how = "" if (tw, th) == (w, h) else f" at --size {tw}x{th}"
        raise PhotoProblem(f"{w}x{h}{how} is over the {max_pixels / 1e6:.1f} megapixels a frame may have (padded "
                           f"to multiples of {MULTIPLE}): pass a smaller --size, e.g. --size 2160p")
    if (tw, th) != (w, h):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, (tw, th), interpolation=cv2.INTER_AREA)
    try:
        out = translator.translate_batch([img])[0]
    except CganError as e:
        raise PhotoProblem(str(e)) from None
    if side_by_side:
        out = np.concatenate([img, out], axis=1)
        if alpha is not None:
            alpha = np.concatenate([alpha, alpha], axis=1)
    if alpha is not None and suffix.lower() in ALPHA_EXTS:
        out = np.dstack([out, alpha])
    return out


def run_photos(job: PhotoJob, translator: Any = None) -> PhotoSummary:
    """Translate the job's photos; return the summary. `translator`: anything with translate_batch (optional;
    without it the job's pair and backend are loaded, and closed at the end)."""
    if not isinstance(job, PhotoJob):
        raise CganError(f"run_photos takes a PhotoJob, got {_describe(job)}")
    job = dataclasses.replace(job)  # checked again (fields may have been set after it was made)
    if not job.inputs:
        raise CganError("inputs is empty: pass at least one photo file or folder")
    if translator is not None and not callable(getattr(translator, "translate_batch", None)):
        raise CganError(f"translator must have a translate_batch(frames) method (e.g. a cgan.runtime.Translator), "
                        f"got {_describe(translator)}")
    size = parse_size(job.size)
    items = find_photos(job.inputs)
    plan, out = plan_outputs(job.inputs, job.output, items)
    if job.max_photos is not None:
        plan = plan[:job.max_photos]
    signals = _handled_signals(job.handle_signals)
    own = translator is None
    if own:
        translator = load_translator(job)
    bar = None
    try:
        max_pixels = int(getattr(translator, "max_pixels", DEFAULT_MAX_PIXELS))
        if job.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(plan), unit="photo", desc="cgan-video", dynamic_ncols=True, file=sys.stderr,
                       leave=False)
        run = _Run(bar)
        summary = _run(job, translator, plan, size, max_pixels, run, signals)
    finally:
        if bar is not None:
            bar.close()
        if own and translator is not None and hasattr(translator, "close"):
            translator.close()
    summary.output = str(out)
    return summary


def _run(job: PhotoJob, translator: Any, plan: list[tuple[Path, Path]], size: tuple[str, Any], max_pixels: int,
         run: _Run, signals: tuple[int, ...]) -> PhotoSummary:
    """Read -> translate (this thread) -> write, until the photos end, a signal stops it, or an error."""
    holder = {"pipe": run}
    q_in: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    q_out: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    reader = threading.Thread(target=_reader, args=(run, plan, q_in), name="cgan-photo-reader", daemon=True)
    writer = threading.Thread(target=_writer, args=(run, q_out), name="cgan-photo-writer", daemon=True)
    t_start = time.perf_counter()
    with _signals(holder, signals):
        reader.start()
        writer.start()
        try:
            while True:
                item = q_in.get()
                if item is _END:
                    break
                if run.stop.is_set():
                    continue  # stopping: what was read ahead is not translated
                src, dst, img, alpha = item
                t0 = time.perf_counter()
                try:
                    result = _translate_one(translator, size, img, alpha, job.side_by_side, dst.suffix, max_pixels)
                    run.n_translated += 1
                except PhotoProblem as e:
                    run.fail(src, str(e))
                    continue
                finally:
                    run.translate_s += time.perf_counter() - t0
                q_out.put((dst, result))  # the writer always takes: never blocks for long
        except BaseException as e:
            run.errors.append(e)
            raise
        finally:
            run.stop.set()
            run.consumer_gone.set()
            reader.join()
            with _signals_deferred(signals):  # what is translated is written, then the run ends
                q_out.put(_END)
                writer.join()
    if run.errors:
        raise run.errors[0]
    seconds = time.perf_counter() - t_start
    return PhotoSummary(photos=run.written, failed=run.failed, seconds=seconds,
                        read_ms=1000.0 * run.read_s / max(1, run.n_tried),
                        translate_ms=1000.0 * run.translate_s / max(1, run.n_translated),
                        write_ms=1000.0 * run.write_s / max(1, run.written), ended=run.ended)
