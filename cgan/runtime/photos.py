"""Photos: a photo file or a folder of photos in, translated photo files out -- the official repo's test.py job,
but at each photo's own size and on any backend. `cgan-video` switches to this when its inputs are photos:

    cgan-video --input photos/ --output winter/           # every photo under photos/: same names and formats
    cgan-video --input beach.jpg --output beach_winter.png

Reading, translating and writing overlap (reader and writer threads around the translation, bounded queues; one
of each with a CPU backend, which needs the cores itself, up to four of each on a GPU, where decoding and encoding
are what is left for the CPU).
Each output goes to a temporary file beside it and is renamed once complete, so an interrupted run never leaves a
half-written photo under its name. A photo that cannot be read or translated (corrupt, too large) is named in a
warning and in the summary and the run goes on; one that cannot be written (disk full, folder gone) ends the run.

Inputs are photo files, folders (recursive) and quoted patterns ('trip/*.jpg'). Photos are decoded as OpenCV's
IMREAD_COLOR does: EXIF orientation applied (an AVIF's 'irot'/'imir' boxes instead, as viewers do), 16-bit scaled
to 8, gray made BGR. A PNG's, WebP's, AVIF's or TIFF's transparency (alpha, or a PNG's tRNS; turned with the photo;
a TIFF's premultiplied colours made straight) is kept
when the output format can hold it (PNG, WebP, TIFF, AVIF). EXIF data and
the ICC colour profile are copied into JPEG, PNG, WebP and AVIF outputs (PhotoJob.metadata: "all", "color" for the
profile alone, "none"): the EXIF orientation says 1 once the pixels are upright, the pixel dimensions are the
output's, the EXIF thumbnail (the untranslated photo) is left out. XMP (keywords, ratings, captions) goes along with
"all", made true of the copy the same way and without develop settings or gain-map data (cgan._xmp); so does a
JPEG's IPTC-IIM, into JPEG outputs, without its preview of the untranslated photo (cgan._iptc). No torch.
"""
from __future__ import annotations

import collections
import dataclasses
import errno
import functools
import glob
import logging
import math
import numbers
import os
import queue
import stat
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any, Sequence

import cv2
import numpy as np

from cgan._codecs import reads
from cgan._files import (IMAGE_EXTS, check_folder_target, nearest_existing, path_key, user_path, visible_files,
                         write_bytes_atomic)
from cgan._images import (BIGTIFF_MAGIC, CLASSIC_TIFF_MAGIC, TIFF_MAGIC, TiffMetadata, bomb_size, exif_for_copy,
                          exif_orientation, frames_in, heif_image, png_gray_key, png_has_alpha, png_orientation,
                          tiff_alpha_orientation, tiff_metadata, webp_has_alpha, webp_orientation)
from cgan._iptc import MAX_IRB, has_iptc, iptc_for_copy, jpeg_photoshop, jpeg_with_photoshop
from cgan._limits import MAX_DECODE_PIXELS, usable_cpus
from cgan._optional import optional_module, pip_extra
from cgan._xmp import JPEG_MAX_XMP, jpeg_with_xmp, jpeg_xmp, png_with_xmp, png_xmp, xmp_for_copy
from cgan.errors import CganError, Terminated
from cgan.runtime.frames import DEFAULT_MAX_PIXELS, model_size_of
from cgan.runtime.sources import DEMO, _describe
from cgan.runtime.video import CODECS, VIDEO_EXTS, JOIN_TIMEOUT_S, _check_bool, _checked_outputs, _handled_signals, \
    _signals, check_compile_mode, load_translator, parse_size, target_size

log = logging.getLogger(__name__)

#: photo extensions every OpenCV reads (as the trainer; cgan._codecs.reads adds AVIF where this OpenCV can)
PHOTO_EXTS = IMAGE_EXTS
#: input extensions written in another format: OpenCV has no .jfif or HEIF writer, and PGM/PBM hold only gray
WRITE_AS = {".jfif": ".jpg", ".pgm": ".png", ".pbm": ".png", ".heic": ".jpg", ".heif": ".jpg", ".hif": ".jpg"}
#: HEIF photos (iPhones): read with pillow-heif where it is installed (cgan[heif]), written as JPEG
HEIF_EXTS = (".heic", ".heif", ".hif")
#: output formats that keep an alpha channel (AVIF where this OpenCV writes it)
ALPHA_EXTS = (".png", ".webp", ".tif", ".tiff") + ((".avif",) if hasattr(cv2, "IMWRITE_AVIF_QUALITY") else ())
#: the photo formats an output refusal names, and those that keep transparency (.avif where this OpenCV writes it)
WRITE_HINT = ".jpg, .png, .webp, .tif" + (", .avif" if ".avif" in ALPHA_EXTS else "") + " or .bmp file"
ALPHA_HINT = ".png, .webp, .tif or .avif" if ".avif" in ALPHA_EXTS else ".png, .webp or .tif"
#: encoder settings (OpenCV's defaults otherwise): JPEG and WebP at quality 95
ENCODE_PARAMS = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
                 ".jpe": [cv2.IMWRITE_JPEG_QUALITY, 95], ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}
if hasattr(cv2, "IMWRITE_AVIF_QUALITY"):
    ENCODE_PARAMS[".avif"] = [cv2.IMWRITE_AVIF_QUALITY, 95]
#: image formats people name that OpenCV cannot write (an --output named so is refused, not made a folder)
UNWRITABLE_EXTS = (".heic", ".heif", ".jxl", ".jfif", ".pgm", ".pbm")
#: photo formats found in photo folders that are not read here (OpenCV has no decoder for them; AVIF only where
#: this OpenCV lacks the codec, see cgan._codecs): left out of folders with a warning, refused when named
NOT_READ_EXTS = {".heic": "HEIC", ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL",
                 ".dng": "raw", ".cr2": "raw", ".cr3": "raw", ".nef": "raw", ".nrw": "raw",
                 ".arw": "raw", ".orf": "raw", ".rw2": "raw", ".raf": "raw", ".pef": "raw", ".srw": "raw"}
#: what PhotoJob.metadata may say: copy EXIF and the ICC profile, only the ICC profile, nothing
METADATA = ("all", "color", "none")
#: output formats OpenCV writes EXIF and ICC profiles into (imencodeWithMetadata: OpenCV 4.12+ for EXIF, 4.13+ ICC)
META_EXTS = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".avif")
#: whether this OpenCV reads and writes photo metadata
CAN_COPY_METADATA = hasattr(cv2, "imdecodeWithMetadata") and hasattr(cv2, "imencodeWithMetadata")
#: a JPEG's or PNG's XMP among _metadata_items: written by encode_photo itself (OpenCV 5.0's JPEG XMP segment
#: lacks its namespace header, so readers do not see it; its PNG chunk carries bytes from past the packet's end)
XMP_OWN = -1
#: a JPEG's IPTC data (an APP13 segment of Photoshop image resources) among _metadata_items: OpenCV has no type
#: for it; encode_photo writes it itself
IPTC_OWN = -2
#: the most EXIF (one APP1 segment) and ICC data (OpenCV writes one APP2 segment) a JPEG holds
JPEG_MAX_EXIF, JPEG_MAX_ICC = 65535 - 2 - 6, 65535 - 2 - 14
_JPEG_EXTS = (".jpg", ".jpeg", ".jpe")
_XMP_OWN_EXTS = _JPEG_EXTS + (".png",)
#: the largest photo file read (a 134-megapixel 16-bit TIFF, uncompressed, is about 800 MB)
MAX_PHOTO_BYTES = 1 << 30
QUEUE_SIZE = 4
#: the most reader (and writer) threads a run may have (each may hold a decoded photo, up to 134 megapixels)
MAX_IO_THREADS = 8
_END = object()
#: how EXIF orientation 1..8 turns an image to show it (in that order), as array views
_TURNS = (lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1, ::-1], lambda a: a[::-1],
          lambda a: a.swapaxes(0, 1), lambda a: np.rot90(a, -1), lambda a: a.swapaxes(0, 1)[::-1, ::-1],
          lambda a: np.rot90(a, 1))


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
    size: str = "native"                  # native, 720p, WxH, N (long side), max:N, as cgan-video --size
    side_by_side: bool = False            # write input | output next to each other
    max_photos: int | None = None         # translate at most this many (in the order listed)
    backend: str = "auto"
    precision: str | None = None
    compile: bool = False                 # torch backend: torch.compile (compiles once per photo size)
    compile_mode: str | None = None       # torch.compile's mode, with compile (None: the backend's default)
    cuda_graphs: bool | None = None
    progress: bool = True                 # tqdm bar on stderr
    metadata: str = "all"                 # copy EXIF and the ICC profile ("all"), the profile only ("color"), "none"
    io_threads: int | None = None         # readers and writers each (None: 1 for a CPU backend, else up to 4)
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
        for name in ("side_by_side", "compile", "progress"):  # (as VideoJob's: numpy's bools too)
            _check_bool(name, getattr(self, name))
            setattr(self, name, bool(getattr(self, name)))
        for name in ("cuda_graphs", "handle_signals"):
            _check_bool(name, getattr(self, name), none_ok=True)
            if getattr(self, name) is not None:
                setattr(self, name, bool(getattr(self, name)))
        for name, none_ok in (("pair", False), ("direction", True), ("size", False), ("backend", False),
                              ("precision", True)):
            value = getattr(self, name)
            if name == "pair" and isinstance(value, os.PathLike):
                continue
            if not (isinstance(value, str) or (value is None and none_ok)):
                raise CganError(f"{name} must be a str{' or None' if none_ok else ''}, got {_describe(value)}")
        check_compile_mode(self)
        if not isinstance(self.metadata, str) or self.metadata not in METADATA:
            raise CganError(f"metadata must be one of {', '.join(METADATA)}, got {_describe(self.metadata)}")
        for name, top in (("max_photos", None), ("io_threads", MAX_IO_THREADS)):
            m = getattr(self, name)
            if m is not None and (not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 1
                                  or (top is not None and m > top)):
                span = f"1..{top}" if top else ">= 1"
                raise CganError(f"{name} must be a whole number {span} or None, got {_describe(m)}")
            if m is not None:
                setattr(self, name, int(m))  # a numpy integer would not go into the summary's JSON


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
    io_threads: int = 1                   # reader threads, and as many writers
    left_out: dict[str, int] = field(default_factory=dict)       # files in formats not read here, by extension

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
        if self.left_out:
            lines.append(f"left out (formats not read here): {_counts(self.left_out)}")
        if self.photos:
            lines.append(f"wrote {self.output}")
        return "\n".join(lines)


def _counts(by_ext: dict[str, int]) -> str:
    return ", ".join(f"{n} {ext}" for ext, n in sorted(by_ext.items(), key=lambda kv: (-kv[1], kv[0])))


def _text(value: object) -> bool:
    return (isinstance(value, (str, os.PathLike)) and isinstance(os.fspath(value), str)
            and bool(os.fspath(value).strip()))


# ---- what is translated, and where it goes ---------------------------------------------------------------
def is_photo_input(value: object) -> bool:
    """True for an --input that names photos: an existing folder, a name with a photo extension (.jpg, .png,
    ...; HEIC and raw names too, to be refused as photos), a quoted pattern ('photos/*.jpg', 'photos/*'; not
    one ending in a video extension), or a name ending in a slash. Camera indices, devices, URLs, 'demo' and video
    files are not."""
    if not _text(value):
        return False
    s = os.fspath(value).strip()  # type: ignore[arg-type]
    if s == DEMO or s.isdecimal() or "://" in s or s.startswith("/dev/"):
        return False
    if Path(s).suffix.lower() in NOT_READ_EXTS:
        return True  # refused as a photo (what to do), not opened as a video
    p = user_path(s)
    if _is_pattern(s) and not os.path.lexists(p) and p.suffix.lower() not in CODECS:
        return True  # 'photos/*', 'trip/**/IMG_*'
    return p.is_dir() or p.suffix.lower() in PHOTO_EXTS or s.endswith(("/", os.sep))  # "photos/": a folder


def _heif() -> Any:
    return optional_module("pillow_heif")


def reads_photo(ext: str) -> bool:
    """Whether photos with `ext` are read here: cgan._codecs.reads, and HEIF with pillow-heif."""
    return reads(ext) or (ext.lower() in HEIF_EXTS and _heif() is not None)


def _read_exts() -> str:
    """The photo extensions read here, for messages (AVIF where this OpenCV has the codec, HEIF with pillow-heif)."""
    return ", ".join(PHOTO_EXTS + tuple(e for e in (".avif",) + HEIF_EXTS if reads_photo(e)))


def _left_out(ext: str) -> bool:
    """Whether a file with `ext` is a photo in a format not read here (counted, not silently skipped)."""
    return ext.lower() in NOT_READ_EXTS and not reads_photo(ext)


def _is_pattern(text: str) -> bool:
    """A glob pattern (a quoted --input 'photos/*.jpg'; the shell expands unquoted ones itself)."""
    return any(c in text for c in "*?[")


def written_suffix(suffix: str) -> str:
    """The extension a photo with `suffix` is written with (its own, unless OpenCV cannot write it in colour)."""
    return WRITE_AS.get(suffix.lower(), suffix)


def _walk(folder: Path, problems: list[tuple[Path, str]], left_out: list[Path],
          videos: list[Path] | None = None) -> list[Path]:
    """The photos under `folder` (recursively; hidden files and folders left out, symlinked folders not entered),
    sorted by their path relative to it. A sub-folder that cannot be read goes to `problems`, a photo in a format
    not read here (NOT_READ_EXTS) to `left_out`, a video file to `videos`; `folder` itself not readable is a
    one-line CganError."""
    def unreadable(e: OSError) -> None:
        if Path(e.filename) == folder:
            raise CganError(f"cannot read the folder {folder}: {e.strerror or e}") from None
        log.warning("warning: cannot read the folder %s (%s); its photos are left out", e.filename,
                    e.strerror or e)
        problems.append((Path(e.filename), f"folder cannot be read: {e.strerror or e}"))

    found = []
    for f in visible_files(folder, unreadable):
        if reads_photo(f.suffix):
            found.append(f)
        elif _left_out(f.suffix):
            left_out.append(f)
        elif videos is not None and f.suffix.lower() in VIDEO_EXTS:
            videos.append(f)
    return sorted(found, key=lambda f: f.relative_to(folder).as_posix())


#: what makes HEIF photos readable
def _heif_hint() -> str:
    return f"; HEIC/HEIF with {pip_extra('heif')}"


def _by_ext(paths: Sequence[Path]) -> dict[str, int]:
    """How many of `paths` have each extension (lower case)."""
    return dict(collections.Counter(p.suffix.lower() for p in paths))


def _not_read(paths: list[Path]) -> str:
    """'12 .heic, 2 .dng (HEIC, raw: not read here; HEIC/HEIF with pip install 'cgan[heif]')'"""
    by_ext = _by_ext(paths)
    kinds = ", ".join(dict.fromkeys(NOT_READ_EXTS[e] for e in sorted(by_ext)))
    return f"{_counts(by_ext)} ({kinds}: not read here{_heif_hint() if set(by_ext) & set(HEIF_EXTS) else ''})"


def find_photos(inputs: Sequence[str | os.PathLike], problems: list[tuple[Path, str]] | None = None,
                left_out: list[Path] | None = None,
                videos: list[tuple[Path, list[Path]]] | None = None) -> list[tuple[Path, PurePath, bool]]:
    """(photo, its path relative to the output folder, whether it came from a folder) for each photo the inputs
    name, in order; a photo named twice (the same file through two inputs) is taken once. One-line CganError for
    a missing input, a folder without photos, a file of another kind or a photo named in a format not read here;
    sub-folders that cannot be read are added to `problems` as (path, reason), photos in folders or patterns in
    formats not read here (HEIC, raw, ...) to `left_out`, (folder, its video files) to `videos`."""
    items: list[tuple[Path, PurePath, bool]] = []
    problems = [] if problems is None else problems
    left_out = [] if left_out is None else left_out
    for value in inputs:
        p = user_path(value)
        if p.is_dir():
            before = len(left_out)
            beside: list[Path] = []
            found = _walk(p, problems, left_out, beside)
            if beside and videos is not None:
                videos.append((p, beside))
            if not found:
                other = f"; it holds {_not_read(left_out[before:])}: convert them to JPEG or PNG first" \
                    if len(left_out) > before else ""
                raise CganError(f"no photos in {p} ({_read_exts()}, hidden files left out){other}")
            items += [(f, f.relative_to(p), True) for f in found]
        elif p.is_file():
            if _left_out(p.suffix):
                hint = f", or {pip_extra('heif')} to read it" if p.suffix.lower() in HEIF_EXTS else ""
                raise CganError(f"--input {p}: {NOT_READ_EXTS[p.suffix.lower()]} photos are not read here; convert it "
                                f"to JPEG or PNG first{hint}")
            if not reads_photo(p.suffix):
                raise CganError(f"--input {p} is not a photo ({_read_exts()}); videos, cameras and "
                                f"streams go in a run of their own")
            items.append((p, PurePath(p.name), False))
        elif _is_pattern(os.fspath(value)) and not os.path.lexists(p):
            matched = [f for f in map(Path, glob.glob(str(p), recursive=True))
                       if f.is_file() and not f.name.startswith(".")]
            found = sorted(f for f in matched if reads_photo(f.suffix))
            other = sorted(f for f in matched if _left_out(f.suffix))
            if not found:
                hint = f": it matches {_not_read(other)}; convert them to JPEG or PNG first" if other else ""
                raise CganError(f"no photos match --input {os.fspath(value).strip()}{hint}")
            left_out += other
            items += [(f, PurePath(f.name), True) for f in found]  # named by a pattern: an output folder
        elif p.is_symlink() and not p.exists():
            raise CganError(f"--input {p} is a broken link (to {os.readlink(p)}, which does not exist)")
        elif os.path.lexists(p):
            raise CganError(f"--input {p} is neither a photo file nor a folder")
        else:
            raise CganError(f"input {'folder' if os.fspath(value).endswith(('/', os.sep)) else 'file'} not found: {p}")
    seen: set[str] = set()
    unique = []
    for item in items:
        # the file's folder resolved, not its own link: the same photo through two spellings of a folder is taken
        # once, a link beside the photo it names is a photo of its own (it was left out without a word)
        key = os.path.join(os.path.realpath(item[0].parent), item[0].name)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def plan_outputs(inputs: Sequence[str | os.PathLike], output: str | os.PathLike | None,
                 items: list[tuple[Path, PurePath, bool]]) -> tuple[list[tuple[Path, Path]], Path]:
    """(photo, output file) pairs and the output as given (a file or a folder). Refuses, with one line, an output
    that would overwrite an input, a folder inside an input folder, two photos written to one name, an output
    file for several photos, and a format OpenCV cannot write."""
    if output is None:
        raise CganError("photos need --output: a photo file for one photo (e.g. winter.jpg) or a folder")
    out = user_path(output)
    one_file = len(items) == 1 and not items[0][2]
    ext = out.suffix.lower()
    as_folder = out.is_dir() or os.fspath(output).endswith(("/", os.sep))
    if ext and not as_folder and (ext in UNWRITABLE_EXTS or ext in CODECS):
        what = ("photos are not written as a video" if ext in CODECS else f"{ext} holds gray only, and the translation "
                f"is in colour" if ext in (".pgm", ".pbm") else f"OpenCV cannot write {ext} files")
        raise CganError(f"--output {out}: {what}; name a {WRITE_HINT}, or a folder (a name without an extension, "
                        f"or ending in /)")
    wants_file = not as_folder and (reads(ext) or (bool(ext) and cv2.haveImageWriter(str(out))))
    if one_file and ext and not wants_file and not as_folder and not os.path.lexists(out) and ext[1:].isalnum():
        # (one photo to `x.xyz` made a folder x.xyz/ holding it, and said "wrote x.xyz")
        raise CganError(f"--output {out}: OpenCV cannot write {ext} photos; name a {WRITE_HINT}, or a folder (a "
                        f"name without an extension, or ending in /)")
    if wants_file:
        if not one_file:
            what = ("a folder" if any(user_path(v).is_dir() for v in inputs) else f"{len(items)} photos"
                    if len(items) > 1 else "a pattern (its photos go into a folder)")
            raise CganError(f"--output {out} names one photo, but the input is {what}: give an output folder")
        plan = [(items[0][0], out)]
    else:
        if os.path.lexists(out) and not out.is_dir():
            raise CganError(f"--output {out} is a file, not a folder; give a folder for the translated photos")
        plan = [(src, out / rel.with_suffix(written_suffix(rel.suffix))) for src, rel, _ in items]
        for value in inputs:
            folder = user_path(value)
            if folder.is_dir() and _within(out, folder):
                raise CganError(f"--output {out} is inside the input folder {folder}: a later run would translate "
                                f"the translations; choose a folder outside it")
    sources = {path_key(src): src for src, _ in plan}
    seen: dict[str, tuple[Path, Path]] = {}
    for src, dst in plan:
        key = path_key(dst)
        if key in sources or (dst.exists() and _same(dst, src)):
            raise CganError(f"--output would overwrite the input photo {sources.get(key, src)}; choose another "
                            f"--output")
        if key in seen:
            other, first = seen[key]
            renamed = next((p for p in (src, other) if p.suffix.lower() != dst.suffix.lower()), None)
            why = (" (names that differ only in case are one file on macOS and Windows)" if first != dst
                   else f" ({renamed.name} is written as {dst.suffix})" if renamed is not None else "")
            raise CganError(f"{other} and {src} would both be written to {dst}{why}; rename one, or translate "
                            f"them in separate runs")
        seen[key] = (src, dst)
        if dst.is_dir():
            raise CganError(f"{dst} is a folder, where the translation of {src} goes; move it or choose another "
                            f"--output")
    # a photo written where another one's sub-folder goes (a.jfif -> a.jpg beside a folder a.jpg/ with photos):
    # by the paths below the output folder, case folded (a realpath per parent made 20,000 photos take 18 s)
    if not wants_file:
        below = {src: PurePath(*(part.casefold() for part in dst.relative_to(out).parts)) for src, dst in plan}
        folders = {parent: src for src, rel in below.items() for parent in rel.parents}
        for src, rel in below.items():
            if rel in folders:
                raise CganError(f"{src} would be written to {dict(plan)[src]}, the folder the translation of "
                                f"{folders[rel]} goes into; rename one, or translate them in separate runs")
    for folder in sorted({dst.parent for _, dst in plan}):
        anc = nearest_existing(folder)
        if not anc.is_dir():
            raise CganError(f"cannot create the output folder {folder}: {anc} is a file; move it or choose another "
                            f"--output")
    check_folder_target(out.parent if wants_file else out, "--output")  # writes a probe: os.access lies to root
    return plan, out


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _within(path: Path, folder: Path) -> bool:
    a, b = path_key(path), path_key(folder)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


# ---- reading and writing one photo -----------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoMeta:
    """The metadata of a photo that a translated copy keeps: EXIF data (a TIFF structure, as read) and an ICC
    profile; `upright`: the decoded pixels were turned as the EXIF orientation says."""

    exif: bytes | None = None
    icc: bytes | None = None
    upright: bool = True
    xmp: bytes | None = None  # the XMP packet (metadata "all")
    iptc: bytes | None = None  # a JPEG's Photoshop image resources holding an IPTC record (metadata "all")

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.xmp or self.iptc)


def read_photo(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """A photo as (BGR uint8 HxWx3 with its EXIF orientation applied, its alpha channel HxW uint8 or None).
    PhotoProblem (a short reason) for a file that is unreadable, empty, not an image, or declares more than
    MAX_DECODE_PIXELS pixels (not decoded: a tiny PNG can declare gigabytes)."""
    img, alpha, _ = read_photo_with_metadata(path, "none")
    return img, alpha


def read_photo_with_metadata(path: str | os.PathLike, metadata: str = "all") \
        -> tuple[np.ndarray, np.ndarray | None, PhotoMeta]:
    """read_photo, and the photo's metadata to copy (`metadata` as PhotoJob's; empty when this OpenCV cannot
    read it)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block the read, or never end it
            raise PhotoProblem("not a regular file")
        if st.st_size > MAX_PHOTO_BYTES:
            raise PhotoProblem(f"a {st.st_size / 2**30:.1f} GiB file, over the {MAX_PHOTO_BYTES >> 30} GiB a photo "
                               f"may have")
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as e:
        raise PhotoProblem(f"cannot be read: {e.strerror or e}") from None
    if data.size == 0:
        raise PhotoProblem("empty file")
    size = bomb_size(data)
    if size is not None:
        raise PhotoProblem(f"declares {size[0]}x{size[1]} pixels, over the {MAX_DECODE_PIXELS // 10**6}-megapixel "
                           f"limit")
    if Path(path).suffix.lower() in HEIF_EXTS and _heif() is not None:
        return _read_heif(data, metadata, path)
    types: Sequence[Any] = ()
    blobs: Sequence[Any] = ()
    try:
        if metadata != "none" and CAN_COPY_METADATA:
            img, types, blobs = cv2.imdecodeWithMetadata(data, cv2.IMREAD_COLOR)
        else:
            img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # e.g. over OpenCV's own pixel limit
        img = None
    if img is None or img.size == 0:
        raise PhotoProblem(_unreadable_why(data))
    heif = heif_image(data) if bytes(data[4:8]) == b"ftyp" else None  # AVIF (HEIF without pillow-heif)
    turned = False
    if heif is not None:
        img, meta, turned = _heif_read_by_opencv(data, img, heif, types, blobs, metadata)
    else:
        meta = _metadata(data, img, types, blobs, metadata)
    alpha, why = None, "its colours and alpha did not line up"
    try:
        if png_has_alpha(data):
            alpha = _png_alpha(data, img)
            why = ""  # (a PNG whose pixels OpenCV turned some other way: said at debug level)
        elif webp_has_alpha(data):
            alpha = _alpha_as_shown(data, img, (webp_orientation(data) or 1) - 1)
        elif (tiff := tiff_alpha_orientation(data))[0] is not None:
            alpha, img, why = _tiff_alpha(data, img, *tiff)
        elif bytes(data[:4]) in BIGTIFF_MAGIC:  # BigTIFF: its tags are not read here
            full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            why = "a BigTIFF's is not read here" if full is not None and full.ndim == 3 and full.shape[2] == 4 else ""
        elif heif is not None and heif.has_alpha:
            alpha = _heif_alpha(data, img, heif, turned)
        else:
            why = ""
    except cv2.error as e:  # e.g. no memory for the 16-bit RGBA decode
        why = str(e).strip().splitlines()[-1]
    if alpha is None and why:
        log.warning("warning: %s: its transparency could not be read (%s); translated without it", path, why)
    _say_if_more_than_one_frame(path, data)
    return img, alpha, meta


def _say_if_more_than_one_frame(path: str | os.PathLike, data: np.ndarray) -> None:
    """An animated PNG, WebP, GIF or AVIF, or a TIFF of several pages, is translated as its first frame or page
    (as OpenCV reads it): a warning says so, instead of the output silently holding one still frame. Counted
    from the bytes already read (cgan._images.frames_in)."""
    n = frames_in(data)
    if n == 1:
        return
    tiff = bytes(data[:4]) in TIFF_MAGIC
    what = "pages" if tiff else "frames"
    count = f"{n} {what}" if n else f"several {what}"
    log.warning("warning: %s: %s of %s; only the first was translated", path,
                "a TIFF" if tiff else "an animated image", count)


def _unreadable_why(data: np.ndarray) -> str:
    """Why a file IMREAD_COLOR refused is not read: a float image (an HDR or scientific TIFF, EXR: OpenCV
    decodes it only as it is, and its values may be linear light, not a photo's) said as such."""
    try:
        full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        full = None
    if full is not None and full.dtype.kind == "f":
        return (f"a {full.dtype.itemsize * 8}-bit floating-point image (HDR or scientific data), not read here; "
                f"convert it to an 8- or 16-bit integer photo first (tone mapped if it holds HDR values)")
    return "not a readable image"


def _read_heif(data: np.ndarray, metadata: str, path: str | os.PathLike = "") \
        -> tuple[np.ndarray, np.ndarray | None, PhotoMeta]:
    """A HEIF photo through pillow-heif: turned as its container says (pillow-heif applies the rotation and
    mirroring and leaves the EXIF orientation 1), 8-bit, with its alpha, EXIF data and ICC profile. A file of
    several images (a burst) gives its primary one, with a warning."""
    pillow_heif = _heif()
    try:
        heif = pillow_heif.open_heif(memoryview(data), convert_hdr_to_8bit=True)
        pixels = np.asarray(heif)
        mode = heif.mode
        info = dict(heif.info)
        images = len(heif)
    except Exception:  # noqa: BLE001 - pillow-heif raises ValueError/RuntimeError/SyntaxError for broken files
        raise PhotoProblem("not a readable image") from None
    if images > 1:
        log.warning("warning: %s: a HEIF file of %d images; only its primary image was translated", path, images)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != np.uint8 or mode not in ("RGB", "RGBA"):
        raise PhotoProblem(f"a {mode} HEIF image, not RGB")
    img = np.ascontiguousarray(pixels[:, :, 2::-1])
    alpha = np.ascontiguousarray(pixels[:, :, 3]) if pixels.shape[2] == 4 else None
    if not CAN_COPY_METADATA:  # (this OpenCV writes none: said once a run by the writer)
        return img, alpha, PhotoMeta()
    exif, icc = _kept(info.get("exif") if metadata == "all" else None,
                      info.get("icc_profile") if metadata != "none" else None)
    return img, alpha, PhotoMeta(exif, icc, True, info.get("xmp") if metadata == "all" else None)


def _kept(exif: bytes | None, icc: bytes | None) -> tuple[bytes | None, bytes | None]:
    """The EXIF data (without an "Exif\\0\\0" prefix) and ICC profile worth copying: EXIF that is not a TIFF
    structure and profiles without an ICC header are dropped."""
    if exif and exif[:6] == b"Exif\x00\x00":
        exif = exif[6:]
    return (exif if exif and exif[:4] in CLASSIC_TIFF_MAGIC else None,
            icc if icc and len(icc) >= 128 and icc[36:40] == b"acsp" else None)


def _turned(data: np.ndarray, img: np.ndarray, orientation: int | None) -> bool | None:
    """Whether IMREAD_COLOR turned `img` as EXIF `orientation` says (True; also when there is nothing to turn),
    left it as stored (False), or neither. Decodes the photo again, unturned, to tell."""
    if orientation in (None, 1):
        return True
    turn = _TURNS[orientation - 1]
    raw = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if raw is not None and turn(raw).shape == img.shape and np.array_equal(turn(raw), img):
        return True  # (an image that looks the same turned or not is taken as turned)
    if raw is not None and raw.shape == img.shape and np.array_equal(raw, img):
        # the same both ways: as stored, unless this decoder turns TIFFs whatever it is asked (OpenCV 5.1 does)
        return bytes(data[:4]) in CLASSIC_TIFF_MAGIC and _opencv_turns_tiffs()
    return None


@functools.lru_cache(maxsize=None)
def _opencv_turns_tiffs() -> bool:
    """Whether this OpenCV applies a TIFF's Orientation tag even with IMREAD_IGNORE_ORIENTATION (5.1 does, in
    every mode; then both decodes of a turned TIFF look the same, and the pixels are turned, not as stored).
    Told by decoding a 2x1 gray TIFF, mirrored by its Orientation 2, made here."""
    tags = [(256, 3, 2), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 134), (274, 3, 2),
            (277, 3, 1), (278, 3, 1), (279, 4, 2)]  # (tag, type SHORT 3 / LONG 4, value); the pixels at 8+126
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes([0, 255])
    got = cv2.imdecode(np.frombuffer(tiff, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    return got is not None and got.shape == (1, 2) and int(got[0, 0]) > int(got[0, 1])


def _heif_read_by_opencv(data: np.ndarray, img: np.ndarray, heif: Any, types: Sequence[Any], blobs: Sequence[Any],
                         metadata: str) -> tuple[np.ndarray, PhotoMeta, bool]:
    """An AVIF as OpenCV decoded it, turned as its 'irot'/'imir' boxes say (every viewer does; OpenCV 5.0 leaves the
    pixels as stored), its metadata, and whether it was turned here. OpenCV writes an AVIF's ICC profile and EXIF
    data but does not read them back, so they are read from the boxes. HEIF's viewers ignore the EXIF orientation
    (the boxes turn the image), so the pixels are upright as they are shown. `heif`: heif_image of `data`."""
    turned = bool(heif.transforms) and not _already_turned(img, heif)
    if turned:
        img = _heif_turned(img, heif.transforms)
    found = _found(types, blobs)
    if CAN_COPY_METADATA:
        exif, icc = _kept(found.get(cv2.IMAGE_METADATA_EXIF) or heif.exif if metadata == "all" else None,
                          found.get(cv2.IMAGE_METADATA_ICCP) or heif.icc if metadata != "none" else None)
        return img, PhotoMeta(exif, icc, True, heif.xmp if metadata == "all" else None), turned
    return img, PhotoMeta(), turned


def _found(types: Sequence[Any], blobs: Sequence[Any]) -> dict[int, bytes]:
    """What cv2.imdecodeWithMetadata read: metadata type -> bytes."""
    return {int(t): bytes(np.asarray(b, dtype=np.uint8).ravel()) for t, b in zip(types, blobs)}


def _heif_turned(a: np.ndarray, transforms: Sequence[tuple[str, int]]) -> np.ndarray:
    """`a` turned and mirrored as an AVIF's 'irot'/'imir' boxes say, in their order."""
    for kind, value in transforms:
        a = np.rot90(a, value) if kind == "irot" else (a[::-1] if value == 0 else a[:, ::-1])
    return np.ascontiguousarray(a)


def _heif_alpha(data: np.ndarray, img: np.ndarray, heif: Any, turned: bool) -> np.ndarray | None:
    """An AVIF's alpha plane, 8-bit (a 10- or 12-bit one scaled by its depth), turned as its colours were."""
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4:
        return None
    a = full[:, :, 3]
    if a.dtype == np.uint16:
        top = int(a.max())
        bits = heif.depth if heif.depth and heif.depth > 8 else next(b for b in (10, 12, 16) if top < 1 << b)
        top = (1 << bits) - 1
        a = ((np.minimum(a, top).astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)
    a = _heif_turned(a, heif.transforms) if turned else np.ascontiguousarray(a)
    return a if a.shape == img.shape[:2] else None


def _already_turned(img: np.ndarray, heif: Any) -> bool:
    """Whether the decoder turned the pixels itself: told by the size for an odd number of quarter turns (OpenCV
    5.0 does not turn; a release that does would be caught by tests/test_photo_metadata.py's AVIF tests)."""
    quarter = sum(v for k, v in heif.transforms if k == "irot") % 2 == 1
    return heif.size is not None and quarter and img.shape[:2] == (heif.size[0], heif.size[1]) != heif.size[::-1]


def _metadata(data: np.ndarray, img: np.ndarray, types: Sequence[Any], blobs: Sequence[Any],
              metadata: str) -> PhotoMeta:
    """The EXIF data and XMP (metadata "all") and ICC profile OpenCV read with the photo (a JPEG's XMP read here:
    OpenCV 5.0 does not; a TIFF's all read here: OpenCV reads none); EXIF that is not a TIFF structure and profiles
    without an ICC header are dropped."""
    found = _found(types, blobs)
    head = bytes(data[:4])
    tiff = tiff_metadata(data) if head in CLASSIC_TIFF_MAGIC and CAN_COPY_METADATA and metadata != "none" \
        else TiffMetadata()
    xmp = iptc = None
    if metadata == "all" and CAN_COPY_METADATA:
        # a JPEG's segment and a PNG's chunk read here (OpenCV gives the one with its namespace header, and only
        # when it has one; the other with a NUL after it)
        xmp = (jpeg_xmp(memoryview(data)) if head[:2] == b"\xff\xd8" else png_xmp(memoryview(data))
               if head[:2] == b"\x89P" else tiff.xmp) or found.get(cv2.IMAGE_METADATA_XMP)
        iptc = jpeg_photoshop(memoryview(data)) if head[:2] == b"\xff\xd8" else tiff.photoshop
        iptc = iptc if has_iptc(iptc) else None
    exif, icc = _kept((found.get(cv2.IMAGE_METADATA_EXIF) or tiff.exif) if metadata == "all" and CAN_COPY_METADATA
                      else None, (found.get(cv2.IMAGE_METADATA_ICCP) or tiff.icc)
                      if metadata != "none" and CAN_COPY_METADATA else None)
    upright = True
    orientation = exif_orientation(exif) if exif else None
    if orientation not in (None, 1) and head[:2] != b"\xff\xd8":  # OpenCV turns JPEGs (since 3.1)
        upright = _turned(data, img, orientation) is not False  # neither: what was decoded is what is shown
    return PhotoMeta(exif, icc, upright, xmp, iptc)


def _png_alpha(data: np.ndarray, img: np.ndarray) -> np.ndarray | None:
    """The alpha channel of a PNG (8-bit), turned as IMREAD_COLOR turned `img` for the PNG's EXIF orientation
    (IMREAD_UNCHANGED, which keeps alpha, does not apply it)."""
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    key = png_gray_key(data) if full is not None and full.ndim == 2 else None
    if key is not None:  # gray with tRNS: the pixels at its level are transparent (levels under 8 bits scaled)
        depth, level = key
        level = level * (255 // ((1 << depth) - 1)) if depth < 8 else level
        full = np.dstack([full, np.where(full == level, 0, np.iinfo(full.dtype).max).astype(full.dtype)])
    if full is None or full.ndim != 3 or full.shape[2] not in (2, 4):
        return None
    a = full[:, :, -1]
    a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8) if a.dtype == np.uint16 else a
    orientation = png_orientation(data)
    turned = _turned(data, img, orientation)
    if turned is None:
        log.debug("alpha dropped: OpenCV did not turn the pixels as EXIF orientation %d says", orientation)
        return None  # the colours were turned some other way: an unturned alpha would not fit them
    if turned and orientation not in (None, 1):
        a = _TURNS[orientation - 1](a)
    return np.ascontiguousarray(a) if a.shape == img.shape[:2] else None


def _tiff_alpha(data: np.ndarray, img: np.ndarray, extra: int | None,
                orientation: int | None) -> tuple[np.ndarray | None, np.ndarray, str]:
    """A TIFF's alpha (8-bit, turned as IMREAD_COLOR turned `img` for the Orientation tag), `img` with straight
    colours, and why there is no alpha ("" for a TIFF without one). An alpha marked as such (ExtraSamples 1,
    associated, or 2, unassociated) comes with colours IMREAD_COLOR gives premultiplied (libtiff's RGBA reader
    premultiplies unassociated alpha; associated alpha is stored so): they are divided by it again, as the model
    must see the colours a viewer composites."""
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4 or full.dtype not in (np.uint8, np.uint16):
        return None, img, ("OpenCV decodes no alpha for a gray TIFF" if full is not None and full.ndim == 2 else
                           "" if full is not None and full.ndim == 3 and full.shape[2] == 3 else
                           "OpenCV decoded it otherwise")
    a, colour = full[:, :, 3], full[:, :, :3]
    if a.dtype == np.uint16:  # 8-bit as IMREAD_COLOR makes the colours (x >> 8); the alpha rounded
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        colour = (colour >> 8).astype(np.uint8)
    # the turn that makes the decoded colours `img` (OpenCV 5.0 turns IMREAD_UNCHANGED too; no turn is tried first,
    # then the Orientation tag's, so colours that look the same turned, a black logo, keep the decoder's turn);
    # unassociated alpha's colours may come premultiplied in one decode and not the other (16-bit)
    looks = [colour] + ([np.round(colour * (a[..., None] / 255.0)).astype(np.uint8)] if extra == 2 else [])
    orientation = orientation if orientation in range(1, 9) else 1
    turn = _turn_of(img, looks, [_TURNS[0], _TURNS[orientation - 1]], tolerance=2)
    if turn is None:
        return None, img, "its colours and alpha did not line up"
    a = np.ascontiguousarray(turn(a))
    if extra in (1, 2):
        seen = a > 0
        straight = np.round(img.astype(np.float32) * 255.0 / np.maximum(a, 1)[..., None])
        img = np.where(seen[..., None], np.minimum(straight, 255.0), img).astype(np.uint8)
    return a, img, ""


def _alpha_as_shown(data: np.ndarray, img: np.ndarray, expected: int = 0) -> np.ndarray | None:
    """The alpha channel of a WebP or AVIF (8-bit), turned as `img` was (an EXIF orientation, an AVIF's boxes):
    IMREAD_UNCHANGED keeps alpha but turns nothing, so the turn that makes its colours `img` is applied to it,
    `expected` (an index in _TURNS: what the file says) first, as a photo can look the same turned (one colour
    under a shaped alpha). None (and a debug line) when no turn does."""
    full = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if full is None or full.ndim != 3 or full.shape[2] != 4 or full.dtype != np.uint8:
        return None
    turn = _turn_of(img, [full[:, :, :3]], [_TURNS[expected]])
    if turn is None:
        log.debug("alpha dropped: no turn of the decoded pixels gives the photo as read")
        return None
    return np.ascontiguousarray(turn(full[:, :, 3]))


def _turn_of(img: np.ndarray, looks: Sequence[np.ndarray], prefer: Sequence[Any], tolerance: int = 0) -> Any:
    """The turn of _TURNS (those in `prefer` first, in that order) that makes one of `looks` (the decoded colours,
    as they may come) `img`, within `tolerance` levels; None when none does. A photo can look the same turned (one
    colour under a shaped alpha): the preferred turns decide then."""
    for turn in sorted(_TURNS, key=lambda t: next((i for i, p in enumerate(prefer) if p is t), len(prefer))):
        for colour in looks:
            turned = turn(colour)
            if turned.shape == img.shape and (np.array_equal(turned, img) if not tolerance else
                                              int(np.abs(turned.astype(np.int16) - img).max()) <= tolerance):
                return turn
    return None


#: the longest side each format holds
MAX_ENCODE_SIDE = {".webp": 16383, ".jpg": 65535, ".jpeg": 65535, ".jpe": 65535}


def check_encodable(width: int, height: int, suffix: str) -> None:
    """PhotoProblem, saying what to do, when a `suffix` file cannot hold a width x height image."""
    ext = suffix.lower()
    side = MAX_ENCODE_SIDE.get(ext)
    if side is not None and max(width, height) > side:
        raise PhotoProblem(f"{width}x{height} is too large for {ext} (at most {side} pixels a side): write .png or "
                           f".tif, or pass --size")


def encode_photo(img: np.ndarray, suffix: str, meta: PhotoMeta | None = None,
                 note: Any = None) -> bytes:
    """`img` (BGR or BGRA uint8) as the bytes of a `suffix` file (JPEG/WebP quality 95), with `meta` where the
    format holds it; `note(key, message)` is told what of it was left out. PhotoProblem, saying what to do, when
    the format cannot hold the image."""
    ext = suffix.lower()
    check_encodable(img.shape[1], img.shape[0], ext)
    params = ENCODE_PARAMS.get(ext, [])
    items = _metadata_items(meta, ext, (img.shape[1], img.shape[0]), note or (lambda key, message: None)) \
        if meta else []
    own = {t: b for t, b in items if t in (XMP_OWN, IPTC_OWN)}  # added below (see XMP_OWN, IPTC_OWN)
    xmp = own.get(XMP_OWN)
    items = [(t, b) for t, b in items if t not in own]
    ok = False
    if items:
        try:
            ok, buf = cv2.imencodeWithMetadata(ext, img, [t for t, _ in items],
                                               [np.frombuffer(b, dtype=np.uint8) for _, b in items], params)
        except cv2.error:
            ok = False
        if not ok and note is not None:
            note("encode", "OpenCV could not write its EXIF data or ICC profile" + ("" if xmp is not None else
                           " or XMP") + ": written without them")
    if not ok:
        try:
            ok, buf = cv2.imencode(ext, img, params)
        except cv2.error:
            ok = False
    if not ok:
        raise PhotoProblem(f"OpenCV could not encode it ({img.shape[1]}x{img.shape[0]}) as {ext}: write .png instead")
    out = buf.tobytes()
    if xmp is not None:
        out = jpeg_with_xmp(out, xmp) if ext in _JPEG_EXTS else png_with_xmp(out, xmp)
    if own.get(IPTC_OWN):
        out = jpeg_with_photoshop(out, own[IPTC_OWN])
    return out


def _metadata_items(meta: PhotoMeta, ext: str, size: tuple[int, int], note: Any) -> list[tuple[int, bytes]]:
    """(OpenCV metadata type, bytes) to write into a `size` photo of format `ext`; what cannot go is noted."""
    if ext not in META_EXTS:
        note(f"format {ext}", f"{ext} outputs are written without EXIF data, ICC profiles and XMP (OpenCV writes them "
                              f"into .jpg, .png, .webp and .avif)")
        return []
    items: list[tuple[int, bytes]] = []

    def add(kind: int, name: str, given: bytes | None, made: bytes | None, broken: str, jpeg_max: int) -> None:
        """`made` (the copy of `given`, None when it could not be made) into items, or a note saying why not."""
        if given and made is None:
            note(f"{name} broken", f"its {name.upper()} data {broken}: written without it")
        elif made is not None and ext in _JPEG_EXTS and len(made) > jpeg_max:
            note(f"{name} size", f"{name.upper()} data over {jpeg_max} bytes does not fit a JPEG: written without it "
                                 f"(write .png or .webp to keep it)")
        elif made is not None:
            items.append((kind, made))

    add(cv2.IMAGE_METADATA_EXIF, "exif", meta.exif,
        exif_for_copy(meta.exif, size, meta.upright) if meta.exif else None, "is cut short", JPEG_MAX_EXIF)
    space = bytes(meta.icc[16:20]).decode("latin-1").strip() if meta.icc else "RGB"
    if space != "RGB":  # a gray or CMYK photo's profile: on the RGB translation it is invalid (libpng refuses it)
        note(f"icc {space}", f"its {space} ICC profile does not describe the translation, which is RGB: written "
                             f"without it")
    elif meta.icc and ext in _JPEG_EXTS and len(meta.icc) > JPEG_MAX_ICC:
        note("icc size", f"an ICC profile over {JPEG_MAX_ICC} bytes is not written into a JPEG by OpenCV: written "
                         f"without it (write .png or .webp to keep it)")
    elif meta.icc:
        items.append((cv2.IMAGE_METADATA_ICCP, meta.icc))
    add(XMP_OWN if ext in _XMP_OWN_EXTS else cv2.IMAGE_METADATA_XMP, "xmp", meta.xmp,
        xmp_for_copy(meta.xmp, size, meta.upright) if meta.xmp else None, "is not XMP this can read", JPEG_MAX_XMP)
    if meta.iptc and ext not in _JPEG_EXTS:
        note(f"iptc {ext}", f"IPTC data goes into JPEG outputs only: {ext} outputs are written without it (the XMP "
                            f"that the apps writing IPTC write beside it goes into every format)")
    elif meta.iptc:
        add(IPTC_OWN, "iptc", meta.iptc, iptc_for_copy(meta.iptc), "is not IPTC-IIM this can read", MAX_IRB)
    return items


# ---- the run -----------------------------------------------------------------------------------------------
class _WriteFailed(Exception):
    """A write the disk refused: raised as a CganError once every writer has ended (the count of photos written
    before it is only known then)."""

    def __init__(self, error: OSError, dst: Path):
        super().__init__(str(error))
        self.error, self.dst = error, dst


class _Run:
    """State shared by the readers, the translation (the caller's thread) and the writers; the attributes the
    video pipeline's signal handler sets (stop, signals, ended) have the same meaning here."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.stop = threading.Event()           # read and translate no more
        self.abort = threading.Event()          # write no more than the photo in hand (an error, a 2nd Ctrl-C)
        self.consumer_gone = threading.Event()  # the translation loop no longer takes what the readers read
        self.writers_done = threading.Event()   # (an Event, not Thread.join: a join interrupted by Ctrl-C was
        #                                         seen to return at once when called again, the writer still busy)
        self.writers_left = 0
        self.next_photo = 0                     # the readers' shared place in the plan
        self.inflight: set[Path] = set()        # the writers' temporary files while they exist
        self.signals = 0
        self.ended = "end"
        self.errors: list[BaseException] = []
        self.failed: list[dict[str, str]] = []
        self.written = 0
        self.read_s = self.translate_s = self.write_s = 0.0
        self.n_tried = self.n_translated = 0
        self.noted: set[str] = set()
        self.lock = threading.Lock()
        self.t_start = time.perf_counter()
        self.io_threads = 1

    def summary(self, ended: str) -> PhotoSummary:
        return PhotoSummary(photos=self.written, failed=self.failed, seconds=time.perf_counter() - self.t_start,
                            read_ms=1000.0 * self.read_s / max(1, self.n_tried),
                            translate_ms=1000.0 * self.translate_s / max(1, self.n_translated),
                            write_ms=1000.0 * self.write_s / max(1, self.written), ended=ended,
                            io_threads=self.io_threads)

    def fail(self, src: Path, reason: str) -> None:
        """One photo not translated: a warning now, a line in the summary, a tick of the bar."""
        log.warning("warning: %s: %s; skipped", src, reason)
        with self.lock:
            self.failed.append({"input": str(src), "reason": reason})
            if self.bar is not None:
                self.bar.update(1)

    def note_once(self, src: Path, key: str, message: str) -> None:
        """A warning about what of a photo was left out (metadata, transparency) although it was written: given
        once a run for each `key`."""
        with self.lock:
            if key in self.noted:
                return
            self.noted.add(key)
        log.warning("warning: %s: %s (said once)", src, message)

    def add(self, bar: int = 0, **amounts: float) -> None:
        """Add to counters that several threads update (`+=` on an attribute is not atomic), and move the
        progress bar by `bar`."""
        with self.lock:
            for name, value in amounts.items():
                setattr(self, name, getattr(self, name) + value)
            if bar and self.bar is not None:
                self.bar.update(bar)

    def take(self, plan: list[tuple[Path, Path]]) -> tuple[Path, Path] | None:
        """The next photo for a reader, None when all are taken."""
        with self.lock:
            i = self.next_photo
            self.next_photo += 1
        return plan[i] if i < len(plan) else None

    def writer_exits(self) -> None:
        with self.lock:
            self.writers_left -= 1
            if self.writers_left <= 0:
                self.writers_done.set()

    def error(self, e: BaseException) -> None:
        """An error that ends the run: nothing more is read or translated, and nothing more written than the
        photos other writers have in hand."""
        self.errors.append(e)
        self.abort.set()
        self.stop.set()

    def give_to_translation(self, q: queue.Queue, item: Any) -> bool:
        """The reader's put: False once the translation loop has ended (it would never take the item)."""
        while not self.consumer_gone.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False


def _reader(run: _Run, plan: list[tuple[Path, Path]], q: queue.Queue, metadata: str) -> None:
    """Read photos (the next one not taken by another reader) until the plan ends or the run stops; then _END."""
    try:
        while not run.stop.is_set():
            photo = run.take(plan)
            if photo is None:
                break
            src, dst = photo
            t0 = time.perf_counter()
            try:
                img, alpha, meta = read_photo_with_metadata(src, metadata)
            except PhotoProblem as e:
                run.fail(src, str(e))
                continue
            finally:
                run.add(read_s=time.perf_counter() - t0, n_tried=1)
            if not run.give_to_translation(q, (src, dst, img, alpha, meta)):
                break
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
        run.error(e)
    finally:
        run.give_to_translation(q, _END)


def _write_problem(e: OSError, dst: Path, written: int) -> CganError:
    what = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
            errno.EACCES: "check its permissions", errno.EPERM: "check its permissions",
            errno.EROFS: "the file system is read-only"}.get(e.errno or 0, "check the output folder")
    done = f"{written} photo{'s' if written != 1 else ''} {'were' if written != 1 else 'was'} written"
    return CganError(f"cannot write {dst}: {e.strerror or e}; {done} ({what}, or choose another --output)")


def _writer(run: _Run, q: queue.Queue) -> None:
    """Write what the translation hands over until _END; once the run is aborted, take and drop the rest (puts
    into the queue must never block for long)."""
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if run.abort.is_set():
                continue
            try:
                _write_one(run, *item)
            except BaseException as e:  # noqa: BLE001 - e.g. a logging handler failing: the writer lives on
                run.errors.append(e)
                run.abort.set()
                run.stop.set()
    finally:
        run.writer_exits()


def _write_one(run: _Run, src: Path, dst: Path, img: np.ndarray, meta: PhotoMeta) -> None:
    t0 = time.perf_counter()
    try:
        data = encode_photo(img, dst.suffix, meta, lambda key, message: run.note_once(src, key, message))
        write_bytes_atomic(dst, data, sync_dir=False, inflight=run.inflight)
        run.add(write_s=time.perf_counter() - t0, written=1, bar=1)
    except PhotoProblem as e:  # this photo only (e.g. too wide for WebP)
        run.fail(src, str(e))
    except OSError as e:  # the disk or the folder: the next photos would fail the same way
        run.error(_WriteFailed(e, dst))
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
        run.error(e)


def _stretched(w: int, h: int, target: tuple[int, int]) -> bool:
    """Whether resizing w x h to `target` changes its shape by more than 1 % (more than rounding does)."""
    return abs(math.log((target[0] / target[1]) / (w / h))) > 0.01


def _translate_one(translator: Any, size: tuple[str, Any], img: np.ndarray, alpha: np.ndarray | None,
                   side_by_side: bool, suffix: str, max_pixels: int) -> np.ndarray:
    h, w = img.shape[:2]
    tw, th = target_size(w, h, size, even=False)
    ph, pw = model_size_of(translator)(th, tw)
    if pw * ph > max_pixels:
        how = "" if (tw, th) == (w, h) else f" at --size {tw}x{th}"
        raise PhotoProblem(f"{w}x{h}{how} is over the {max_pixels / 1e6:.1f} megapixels a frame may have (run at "
                           f"{pw}x{ph}): pass --size max:4096 (PhotoJob.size; shrinks only the larger photos)")
    check_encodable(tw * (2 if side_by_side else 1), th, suffix)  # before the translation, not after it
    if (tw, th) != (w, h):
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, (tw, th), interpolation=cv2.INTER_AREA)
    try:
        outs = translator.translate_batch([img])
    except CganError as e:
        raise PhotoProblem(str(e)) from None
    # an app's own translator that returns the wrong thing ends the run, as in run_video (every photo was
    # written at its 10x10, or float frames clipped, or [] raised IndexError)
    out = _checked_outputs(outs, [img])[0]
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
    if translator is not None and getattr(translator, "closed", False) is True:
        raise CganError("this Translator is closed; load a new one")
    size = parse_size(job.size)
    if job.metadata != "none" and not CAN_COPY_METADATA:
        log.warning("warning: OpenCV %s cannot copy photo metadata (EXIF data, ICC profiles; OpenCV 4.12+ can): "
                    "the photos are written without it (--metadata none silences this)", cv2.__version__)
    problems: list[tuple[Path, str]] = []
    left_out: list[Path] = []
    videos: list[tuple[Path, list[Path]]] = []
    items = find_photos(job.inputs, problems, left_out, videos)
    for folder, found in videos:
        log.warning("warning: %s also holds %d video%s (e.g. %s), left out: translate them with --input on a "
                    "folder of videos, or one by one", folder, len(found), "s" * (len(found) > 1),
                    found[0].relative_to(folder))
    plan, out = plan_outputs(job.inputs, job.output, items)
    left_out = list({os.path.realpath(p): p for p in left_out}.values())
    if left_out:
        log.warning("warning: left out %s: convert them to JPEG or PNG to translate them (e.g. %s)",
                    _not_read(left_out), left_out[0])
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
        run.failed = [{"input": str(p), "reason": why} for p, why in problems]
        try:
            summary = _run(job, translator, plan, size, max_pixels, run, signals, io_threads(job, translator))
        except KeyboardInterrupt as e:  # a second Ctrl-C (SIGTERM) forced the stop: what was done rides on it
            e.summary = run.summary("terminated" if isinstance(e, Terminated) else "interrupted")
            e.summary.output, e.summary.left_out = str(out), _by_ext(left_out)
            raise
    finally:
        if bar is not None:
            bar.close()
        if own and translator is not None and hasattr(translator, "close"):
            translator.close()
    summary.output = str(out)
    summary.left_out = _by_ext(left_out)
    return summary


def io_threads(job: PhotoJob, translator: Any) -> int:
    """Reader (and writer) threads for the run: the job's, else 1 when the translator runs on the CPU (or does not
    say where: its cores are busy translating) and up to 4 when it runs on a GPU (JPEG decoding and encoding are
    then the CPU's work; OpenCV's codecs release the GIL)."""
    if job.io_threads is not None:
        return job.io_threads
    info = getattr(translator, "info", None)
    if getattr(info, "device", "cpu") in (None, "cpu"):
        return 1
    cores = usable_cpus()  # the cores this process may use (a container's share)
    return max(1, min(4, cores // 2))


def _run(job: PhotoJob, translator: Any, plan: list[tuple[Path, Path]], size: tuple[str, Any], max_pixels: int,
         run: _Run, signals: tuple[int, ...], n_io: int) -> PhotoSummary:
    """Read (n_io threads) -> translate (this thread) -> write (n_io threads), until the photos end, a signal
    stops it, or an error."""
    q_in: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    q_out: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
    n_io = max(1, min(n_io, len(plan)))
    readers = [threading.Thread(target=_reader, args=(run, plan, q_in, job.metadata), name=f"cgan-photo-reader-{i}",
                                daemon=True) for i in range(n_io)]
    writers = [threading.Thread(target=_writer, args=(run, q_out), name=f"cgan-photo-writer-{i}", daemon=True)
               for i in range(n_io)]
    started: list[threading.Thread] = []
    run.t_start, run.io_threads = time.perf_counter(), n_io
    with _signals({"pipe": run}, signals):
        ends = 0
        try:
            run.writers_left = n_io
            for t in writers + readers:  # writers first: a reader's photo always has somewhere to go
                t.start()
                started.append(t)
            while True:
                item = q_in.get()
                if item is _END:
                    ends += 1
                    if ends == len(readers):
                        break
                    continue
                if run.stop.is_set():
                    continue  # stopping: what was read ahead is not translated
                src, dst, img, alpha, meta = item
                if alpha is not None and dst.suffix.lower() not in ALPHA_EXTS:
                    run.note_once(src, f"alpha{dst.suffix.lower()}",
                                  f"{dst.suffix.lower()} is written without transparency (what lies under its "
                                  f"transparent pixels shows); write {ALPHA_HINT} to keep it")
                if size[0] == "exact" and _stretched(img.shape[1], img.shape[0], size[1]):
                    run.note_once(src, "stretched",
                                  f"{img.shape[1]}x{img.shape[0]} is stretched to --size {size[1][0]}x{size[1][1]}, "
                                  f"another shape; --size N or max:N keeps each photo's shape (portrait photos too)")
                t0 = time.perf_counter()
                try:
                    result = _translate_one(translator, size, img, alpha, job.side_by_side, dst.suffix, max_pixels)
                    run.n_translated += 1
                except PhotoProblem as e:
                    run.fail(src, str(e))
                    continue
                finally:
                    run.translate_s += time.perf_counter() - t0
                q_out.put((src, dst, result, meta))  # the writers always take: never blocks for long
        except BaseException as e:
            run.error(e)
            raise
        finally:
            n_writers = sum(t in started for t in writers)
            if n_writers < len(writers):  # a start failed (no threads left): only the started ones will end
                run.add(writers_left=n_writers - len(writers))
                if run.writers_left <= 0:
                    run.writers_done.set()
            _end_threads(run, [t for t in readers if t in started], n_writers, q_out)
    if run.errors:
        e = run.errors[0]
        if isinstance(e, _WriteFailed):
            raise _write_problem(e.error, e.dst, run.written) from None
        raise e
    return run.summary(run.ended)


def _end_threads(run: _Run, readers: list[threading.Thread], n_writers: int, q_out: queue.Queue) -> None:
    """Stop the readers and let the writers finish: they write what is translated, or (after an error, or a
    KeyboardInterrupt while they are waited for -- a second Ctrl-C) only the photos in hand. A KeyboardInterrupt
    during that shorter wait (or the first one, when an error had already cut the run short) gives up waiting:
    the temporary files of the photos in hand are removed and the writers are left to the end of the process.
    A KeyboardInterrupt that did not give up is raised once the writers have ended (an error of the run wins over
    it). The readers are not waited for longer than JOIN_TIMEOUT_S in all: a read that hangs (a dead network
    share) cannot stop the run from ending."""
    interrupted: KeyboardInterrupt | None = None
    short = run.abort.is_set()  # an error already cut the run short: the next Ctrl-C gives up
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    ends = 0
    for step in ("flags", "readers", "end marks", "writers"):
        while True:
            try:
                if step == "flags":
                    run.stop.set()
                    run.consumer_gone.set()
                elif step == "readers":
                    for t in readers:
                        t.join(max(0.0, deadline - time.monotonic()))
                elif step == "end marks":
                    while ends < n_writers:  # one per writer; counted, as a Ctrl-C may come between two
                        q_out.put(_END)
                        ends += 1
                else:
                    while not run.writers_done.wait(0.1):
                        pass
                break
            except KeyboardInterrupt as e:
                if interrupted is not None or short:
                    run.stop.set()
                    run.consumer_gone.set()
                    _remove_inflight(run)
                    raise
                interrupted = e
                run.abort.set()
    if interrupted is not None and not run.errors:
        raise interrupted


def _remove_inflight(run: _Run) -> None:
    """Remove the writers' temporary files (giving up on them: the process is about to end, and a daemon
    thread's `finally` does not run then). A writer still writing one gets an error it will not report."""
    with run.lock:
        paths = list(run.inflight)
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass
