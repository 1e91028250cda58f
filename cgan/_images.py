"""Image headers read without decoding (no torch, no OpenCV): the size a PNG, JPEG, TIFF, WebP, BMP or AVIF file
declares, a PNG's transparency and EXIF orientation, an AVIF's metadata and turns, and EXIF data made fit to copy
into a translated photo.
The trainer and the runtime's photo mode refuse decompression bombs with them before OpenCV allocates anything
(other formats: OpenCV's own limit, OPENCV_IO_MAX_IMAGE_PIXELS, which the CLIs set before OpenCV loads)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers (not DHT, JPG, DAC)
_PNG = b"\x89PNG\r\n\x1a\n"
#: EXIF tags: Orientation (IFD0), the Exif sub-IFD's offset (IFD0), PixelXDimension and PixelYDimension (Exif IFD)
ORIENTATION, _EXIF_IFD, _PIXEL_DIMENSIONS = 0x0112, 0x8769, (0xA002, 0xA003)


def bomb_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """The (width, height) `data` declares when that is over MAX_DECODE_PIXELS (a "decompression bomb": a small
    file declaring gigapixels, to refuse without decoding), else None."""
    from cgan._limits import MAX_DECODE_PIXELS

    size = declared_size(data)
    return size if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS else None


def declared_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) a PNG, JPEG, TIFF (first page), WebP, BMP or AVIF/HEIF (the largest 'ispe') file declares
    in its header, without decoding it; None for other formats or a header this does not understand (OpenCV then
    decides)."""
    b = bytes(data[:32]) if not isinstance(data, bytes) else data[:32]
    buf = data if isinstance(data, bytes) else memoryview(data)
    if b[:8] == _PNG and b[12:16] == b"IHDR" and len(b) >= 24:
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    if b[:2] == b"\xff\xd8":
        return _jpeg(buf)
    if b[:4] in CLASSIC_TIFF_MAGIC:
        return _tiff(buf, "little" if b[:2] == b"II" else "big")
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP" and len(b) >= 30:
        return _webp(b)
    if b[4:8] == b"ftyp":  # ISOBMFF: AVIF (and HEIF) keep each image's size in an 'ispe' box near the start
        return _ispe(buf)
    if b[:2] == b"BM" and len(b) >= 26:
        if int.from_bytes(b[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
            return int.from_bytes(b[18:20], "little"), int.from_bytes(b[20:22], "little")
        return (abs(int.from_bytes(b[18:22], "little", signed=True)),
                abs(int.from_bytes(b[22:26], "little", signed=True)))  # negative height: stored top-down
    return None


def _jpeg(buf: bytes | memoryview) -> tuple[int, int] | None:
    i, n = 2, len(buf)
    while i + 9 <= n:
        if buf[i] != 0xFF:  # bytes between segments: libjpeg passes over them to the next marker, and so must this
            i = _next_ff(buf, i)  # (one junk byte before the frame header hid a bomb's size)
            continue
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF_MARKERS:
            return (buf[i + 7] << 8) | buf[i + 8], (buf[i + 5] << 8) | buf[i + 6]
        if marker == 0xDA:  # start of scan before any frame header: not a JPEG this understands
            return None
        i += 2 + ((buf[i + 2] << 8) | buf[i + 3])
    return None


def _next_ff(buf: bytes | memoryview, i: int, chunk: int = 1 << 16) -> int:
    """The index of the first 0xFF byte in buf at or after `i` (len(buf) when there is none)."""
    while i < len(buf):
        at = bytes(buf[i:i + chunk]).find(b"\xff")
        if at >= 0:
            return i + at
        i += chunk
    return len(buf)


def jpeg_metadata_segments(data: bytes | memoryview) -> Iterator[tuple[int, int, int]]:
    """(marker, payload start, payload end) of each segment of a JPEG before its image data (the start of scan),
    up to the first that is cut short or not a segment; nothing for what is not a JPEG."""
    if bytes(data[:2]) != b"\xff\xd8":
        return
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xFF:  # a fill byte before the marker
            i += 1
            continue
        if marker in (0xDA, 0xD9) or length < 2 or i + 2 + length > len(data):
            return
        yield marker, i + 4, i + 2 + length
        i += 2 + length


def jpeg_with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """`jpeg` with an APPn segment `marker` holding `payload` after its other APPn segments (ValueError when the
    payload does not fit one segment)."""
    if len(payload) > 65535 - 2:
        raise ValueError(f"{len(payload)} bytes do not fit one JPEG segment")
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF and 0xE0 <= jpeg[i + 1] <= 0xEF:
        i += 2 + int.from_bytes(jpeg[i + 2:i + 4], "big")
    return jpeg[:i] + bytes((0xFF, marker)) + (2 + len(payload)).to_bytes(2, "big") + payload + jpeg[i:]


def _tiff(buf: bytes | memoryview, order: str) -> tuple[int, int] | None:
    """ImageWidth (tag 256) and ImageLength (257) of the first IFD (the page OpenCV reads)."""
    size = _ifd0(buf, order, (256, 257))
    return (size[256], size[257]) if len(size) == 2 else None


def _entries(buf: bytes | bytearray | memoryview, order: str, off: int,
             big: bool = False) -> Iterator[tuple[int, int, int]]:
    """(offset, tag, type) of each entry of the TIFF IFD at `off` (as far as the data holds them): 12-byte entries
    after a 2-byte count, or with `big` BigTIFF's 20-byte entries after an 8-byte count."""
    n, count, size = len(buf), (8 if big else 2), (20 if big else 12)
    if off < 8 or off + count > n:
        return
    for k in range(int.from_bytes(bytes(buf[off:off + count]), order)):
        e = off + count + size * k
        if e + size > n:
            return
        yield e, int.from_bytes(bytes(buf[e:e + 2]), order), int.from_bytes(bytes(buf[e + 2:e + 4]), order)


def _ifd0(buf: bytes | memoryview, order: str, tags: tuple[int, ...]) -> dict[int, int]:
    """The SHORT or LONG values of `tags` in the first IFD of a TIFF structure (a TIFF file, or EXIF data)."""
    return {tag: int.from_bytes(buf[e + 8:e + (10 if typ == 3 else 12)], order)
            for e, tag, typ in _entries(buf, order, int.from_bytes(buf[4:8], order))
            if tag in tags and typ in (3, 4)}  # SHORT or LONG


def _ispe(buf: bytes | memoryview) -> tuple[int, int] | None:
    """The largest image size an AVIF/HEIF file's 'ispe' boxes declare (in its first 64 KiB: the meta box comes
    first in the files AVIF encoders write; the primary image and a grid's tiles each have one)."""
    head = bytes(buf[:65536])
    best, i = None, head.find(b"ispe")
    while i >= 4 and i + 16 <= len(head):
        w, h = int.from_bytes(head[i + 8:i + 12], "big"), int.from_bytes(head[i + 12:i + 16], "big")
        if best is None or w * h > best[0] * best[1]:
            best = (w, h)
        i = head.find(b"ispe", i + 4)
    return best


def _webp(b: bytes) -> tuple[int, int] | None:
    chunk = b[12:16]
    if chunk == b"VP8X":  # extended: canvas size - 1, 24 bits each
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if chunk == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sides after the start code
        return int.from_bytes(b[26:28], "little") & 0x3FFF, int.from_bytes(b[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and b[20] == 0x2F:  # lossless: 14 bits width - 1, 14 bits height - 1
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def webp_has_alpha(data: bytes | np.ndarray) -> bool:
    """True for a WebP whose header says it has transparency (extended format's alpha flag; lossless format's
    alpha-is-used bit)."""
    b = bytes(data[:25])
    if len(b) < 25 or b[:4] != b"RIFF" or b[8:12] != b"WEBP":
        return False
    if b[12:16] == b"VP8X":
        return bool(b[20] & 0x10)
    return b[12:16] == b"VP8L" and b[20] == 0x2F and bool(int.from_bytes(b[21:25], "little") >> 28 & 1)


_TIFF_ORDER = {b"II*\x00": "little", b"MM\x00*": "big"}
CLASSIC_TIFF_MAGIC = tuple(_TIFF_ORDER)  # a classic TIFF's (and EXIF data's) first 4 bytes
BIGTIFF_MAGIC = (b"II+\x00", b"MM\x00+")
TIFF_MAGIC = (*CLASSIC_TIFF_MAGIC, *BIGTIFF_MAGIC)  # a TIFF's or BigTIFF's first 4 bytes


def tiff_alpha_orientation(data: bytes | np.ndarray) -> tuple[int | None, int | None]:
    """For a TIFF whose first page has an alpha channel: (its ExtraSamples value: 1 associated, 2 unassociated,
    0 when there is no ExtraSamples and one sample more than its colours, as OpenCV writes RGBA; its Orientation
    tag or None). (None, None) for anything else."""
    order = _TIFF_ORDER.get(bytes(data[:4]))
    if order is None:
        return None, None
    tags = _ifd0(data if isinstance(data, bytes) else memoryview(data), order, (262, 274, 277, 338))
    colours = {0: 1, 1: 1, 2: 3}.get(tags.get(262, -1))  # Photometric: gray (either way), RGB
    extra = tags.get(338)
    if extra in (1, 2):
        return extra, tags.get(274)
    if extra in (None, 0) and colours is not None and tags.get(277) == colours + 1:
        return 0, tags.get(274)
    return None, None


#: bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG,
#: SRATIONAL, FLOAT, DOUBLE, IFD)
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
#: a TIFF's first-IFD tags that EXIF data holds too (description, camera, orientation, resolution, software,
#: date, artist, copyright); its image-structure tags (strips, tiles, compression, samples) describe pixels the
#: copy does not carry
_EXIF_IFD0_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432}
_GPS_IFD, _MAKER_NOTE, _INTEROP_IFD = 0x8825, 0x927C, 0xA005
#: TIFF tags of the metadata a translated copy keeps: ICC profile, XMP packet, Photoshop image resources (IPTC)
TIFF_ICC, TIFF_XMP, TIFF_PHOTOSHOP = 34675, 700, 34377
_MAX_FIELD = 1 << 24  # bytes of one field read at most (profiles and packets are KBs to a few MBs)
_MAX_EXIF_FIELD = 4096  # bytes of one field copied into the EXIF data (camera, dates, exposure: tens of bytes)


@dataclass(frozen=True)
class TiffMetadata:
    """What a TIFF's first IFD holds for a translated copy (OpenCV reads no TIFF's metadata): EXIF data made of
    its descriptive tags and its Exif and GPS sub-IFDs (a TIFF structure of its own, without maker notes, whose
    offsets point into the file they came from), the ICC profile, the XMP packet and the Photoshop resources."""
    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    photoshop: bytes | None = None


def tiff_metadata(data: bytes | np.ndarray) -> TiffMetadata:
    """The TiffMetadata of a TIFF file (classic TIFF; empty for BigTIFF or anything else)."""
    buf = data if isinstance(data, bytes) else memoryview(data)
    order = _TIFF_ORDER.get(bytes(buf[:4]))
    if order is None:
        return TiffMetadata()
    blobs = (TIFF_ICC, TIFF_XMP, TIFF_PHOTOSHOP)
    ifd0 = dict(_fields(buf, order, int.from_bytes(buf[4:8], order), {*_EXIF_IFD0_TAGS, _EXIF_IFD, _GPS_IFD, *blobs}))

    def blob(tag: int) -> bytes | None:
        return ifd0[tag][2] if tag in ifd0 and ifd0[tag][2] else None

    # (a field of megabytes, an ImageJ or OME-TIFF's ImageDescription, would push the EXIF data over what a JPEG
    # holds, and the camera, date and GPS would go with it)
    keep = {tag: f for tag, f in ifd0.items() if tag in _EXIF_IFD0_TAGS and len(f[2]) <= _MAX_EXIF_FIELD}
    subs = {}
    for tag in (_EXIF_IFD, _GPS_IFD):
        if tag in ifd0 and ifd0[tag][0] in (4, 13) and len(ifd0[tag][2]) >= 4:
            # not the maker notes (their offsets point into the TIFF) nor any pointer to another IFD (it would
            # point into the TIFF too)
            sub = {t: f for t, f in _fields(buf, order, int.from_bytes(ifd0[tag][2][:4], order))
                   if t not in (_MAKER_NOTE, _INTEROP_IFD, _EXIF_IFD, _GPS_IFD) and f[0] != 13
                   and len(f[2]) <= _MAX_EXIF_FIELD}
            if sub:
                subs[tag] = sub
    exif = _exif_of(keep, subs, order) if keep or subs else None
    return TiffMetadata(exif, blob(TIFF_ICC), blob(TIFF_XMP), blob(TIFF_PHOTOSHOP))


def _fields(buf: bytes | memoryview, order: str, off: int,
            tags: set[int] | None = None) -> Iterator[tuple[int, tuple[int, int, bytes]]]:
    """(tag, (type, count, value bytes)) of each entry of the IFD at `off` (of `tags` only, when given) whose value
    lies within the data."""
    for e, tag, typ in _entries(buf, order, off):
        if tags is not None and tag not in tags:
            continue
        count = int.from_bytes(buf[e + 4:e + 8], order)
        size = _TYPE_SIZE.get(typ, 0) * count
        if not size or size > _MAX_FIELD:
            continue
        at = e + 8 if size <= 4 else int.from_bytes(buf[e + 8:e + 12], order)
        if at + size <= len(buf):
            yield tag, (typ, count, bytes(buf[at:at + size]))


def _exif_of(ifd0: dict[int, tuple[int, int, bytes]], subs: dict[int, dict[int, tuple[int, int, bytes]]],
             order: str) -> bytes:
    """EXIF data (a TIFF structure in byte order `order`) of the first IFD `ifd0` and the sub-IFDs `subs` (tag of
    their pointer -> fields), each IFD followed by its values that do not fit an entry."""
    out = bytearray((b"II*\x00" if order == "little" else b"MM\x00*") + (8).to_bytes(4, order))

    def ifd(fields: dict[int, tuple[int, int, bytes]], pointers: tuple[int, ...] = ()) -> list[int]:
        """Append an IFD; return where the entries of `pointers` keep their offsets (filled in later)."""
        start = len(out)
        tags = sorted(set(fields) | set(pointers))
        data_at = start + 2 + 12 * len(tags) + 4
        data = bytearray()
        slots = []
        out.extend(len(tags).to_bytes(2, order))
        for tag in tags:
            e = len(out)
            if tag in pointers:
                out.extend(tag.to_bytes(2, order) + (4).to_bytes(2, order) + (1).to_bytes(4, order) + bytes(4))
                slots.append(e + 8)
                continue
            typ, count, value = fields[tag]
            out.extend(tag.to_bytes(2, order) + typ.to_bytes(2, order) + count.to_bytes(4, order))
            if len(value) <= 4:
                out.extend(value + bytes(4 - len(value)))
            else:
                data.extend(b"\x00" * ((data_at + len(data)) & 1))  # values start on a word boundary
                out.extend((data_at + len(data)).to_bytes(4, order))
                data.extend(value)
        out.extend(bytes(4))  # no next IFD (no thumbnail)
        out.extend(data)
        return slots

    slots = ifd(ifd0, tuple(subs))
    for slot, tag in zip(slots, sorted(subs)):
        out.extend(b"\x00" * (len(out) & 1))
        out[slot:slot + 4] = len(out).to_bytes(4, order)
        ifd(subs[tag])
    return bytes(out)


def webp_orientation(data: bytes | np.ndarray) -> int | None:
    """The EXIF orientation in a WebP's EXIF chunk (None without one)."""
    b = bytes(data)
    if b[:4] != b"RIFF" or b[8:12] != b"WEBP":
        return None
    i = 12
    while i + 8 <= len(b):
        kind, size = b[i:i + 4], int.from_bytes(b[i + 4:i + 8], "little")
        if kind == b"EXIF":
            exif = b[i + 8:i + 8 + size]
            return exif_orientation(exif[6:] if exif[:6] == b"Exif\x00\x00" else exif)
        i += 8 + size + (size & 1)
    return None


def png_walk(data: bytes | np.ndarray) -> Iterator[tuple[bytes, bytes | memoryview]]:
    """(type, body) of a PNG's chunks up to its first IDAT (where ancillary chunks such as tRNS and eXIf sit);
    nothing for anything else."""
    buf = data if isinstance(data, bytes) else memoryview(data)
    if bytes(buf[:8]) != _PNG:
        return
    i, n = 8, len(buf)
    while i + 8 <= n:
        length = int.from_bytes(buf[i:i + 4], "big")
        kind = bytes(buf[i + 4:i + 8])
        yield kind, buf[i + 8:min(n, i + 8 + length)]
        if kind in (b"IDAT", b"IEND"):
            return
        i += 12 + length


def png_chunks(data: bytes | np.ndarray) -> list[bytes]:
    """The chunk types of a PNG up to its first IDAT; [] for anything else."""
    return [kind for kind, _ in png_walk(data)]


def png_gray_key(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(bit depth, the gray level shown transparent) of a gray PNG with a tRNS chunk (colour type 0: one level is
    transparent, and OpenCV decodes one channel without it); None for anything else."""
    b = bytes(data[:26]) if not isinstance(data, bytes) else data[:26]
    if b[:8] != _PNG or b[12:16] != b"IHDR" or len(b) < 26 or b[25] != 0:
        return None
    body = next((bytes(body) for kind, body in png_walk(data) if kind == b"tRNS"), None)
    return (b[24], int.from_bytes(body[:2], "big")) if body is not None and len(body) >= 2 else None


def png_orientation(data: bytes | np.ndarray) -> int | None:
    """The EXIF Orientation (1..8) of a PNG's eXIf chunk, or None (no chunk, no tag, a value out of range)."""
    body = next((body for kind, body in png_walk(data) if kind == b"eXIf"), None)
    return None if body is None else exif_orientation(body)


def _tiff_order(exif: bytes | bytearray | memoryview) -> str | None:
    head = bytes(exif[:4])
    return "little" if head == b"II*\x00" else "big" if head == b"MM\x00*" else None


def exif_orientation(exif: bytes | bytearray | memoryview) -> int | None:
    """The Orientation (1..8) in EXIF data (a TIFF structure), or None (no tag, a value out of range, not EXIF)."""
    order = _tiff_order(exif)
    value = None if order is None else _ifd0(exif, order, (ORIENTATION,)).get(ORIENTATION)
    return value if value is not None and 1 <= value <= 8 else None


def exif_for_copy(exif: bytes, size: tuple[int, int], upright: bool) -> bytes | None:
    """EXIF data (a TIFF structure) made fit for a translated copy of its photo, `size` (width, height) pixels:
    Orientation 1 when the pixels were turned upright (else as it was), PixelXDimension and PixelYDimension
    set to `size`, and the thumbnail (IFD1: a small picture of the untranslated photo) unlinked. Everything
    else (camera, dates, GPS, maker notes) stays byte for byte at its offset. None for data that is not EXIF or
    whose first IFD is cut short."""
    b = bytearray(exif[6:] if exif[:6] == b"Exif\x00\x00" else exif)
    order = _tiff_order(b)
    if order is None:
        return None
    off = int.from_bytes(b[4:8], order)
    end = off + 2 + 12 * int.from_bytes(b[off:off + 2], order) if 8 <= off <= len(b) - 2 else len(b)
    if end + 4 > len(b):
        return None
    sub = None
    for e, tag, typ in _entries(b, order, off):
        if tag == ORIENTATION and upright:
            _set(b, e, typ, 1, order)
        elif tag == _EXIF_IFD and typ in (4, 13):  # LONG or IFD: the offset of the Exif sub-IFD
            sub = int.from_bytes(b[e + 8:e + 12], order)
    b[end:end + 4] = bytes(4)  # IFD0's link to IFD1
    if sub is not None and sub != off:
        for e, tag, typ in _entries(b, order, sub):
            if tag in _PIXEL_DIMENSIONS:
                _set(b, e, typ, size[_PIXEL_DIMENSIONS.index(tag)], order)
    return bytes(b)


def _set(b: bytearray, e: int, typ: int, value: int, order: str) -> None:
    """Set the one SHORT or LONG value of the entry at `e` (left alone when of another type, or too large)."""
    if typ == 3 and value <= 0xFFFF:
        b[e + 8:e + 12] = value.to_bytes(2, order) + bytes(2)
    elif typ == 4 and value <= 0xFFFFFFFF:
        b[e + 8:e + 12] = value.to_bytes(4, order)


MAX_COUNTED = 100_000  # frames or pages counted at most (a loop or a forged count stops there)


def frames_in(data: bytes | np.ndarray) -> int | None:
    """How many frames (or pages) an image file holds, read from its bytes alone: an animated PNG's acTL count,
    a WebP's ANMF chunks, a GIF's images, a TIFF's page chain; 1 for a still image or anything else. None: an
    AVIF image sequence (its count is not read here). Never decodes, never opens a path (cv2.imcount on a
    file name that is not UTF-8 crashed the process)."""
    b = bytes(data[:64]) if not isinstance(data, bytes) else data[:64]
    view = data if isinstance(data, bytes) else memoryview(data).cast("B")  # (a 1-D uint8 array, as np.fromfile's)
    if b[:8] == _PNG:
        body = next((bytes(body) for kind, body in png_walk(data) if kind == b"acTL"), None)
        n = int.from_bytes(body[:4], "big") if body is not None and len(body) >= 4 else 1
        return min(max(n, 1), MAX_COUNTED)
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        if not (b[12:16] == b"VP8X" and len(b) > 20 and b[20] & 0x02):
            return 1
        return max(1, _riff_count(view, b"ANMF"))
    if b[:6] in (b"GIF87a", b"GIF89a"):
        return max(1, _gif_images(view))
    if b[:4] in TIFF_MAGIC:
        return max(1, _tiff_pages(view))
    if b[4:8] == b"ftyp":  # ISOBMFF: an image sequence names the 'avis' brand (major or compatible)
        size = int.from_bytes(b[:4], "big")
        brands = bytes(view[8:min(size, 256)])
        return None if any(brands[i:i + 4] == b"avis" for i in range(0, len(brands) - 3, 4)) else 1
    return 1


def _riff_count(buf: bytes | memoryview, kind: bytes) -> int:
    """How many of a WebP's top-level RIFF chunks are of `kind` (ANMF: its frames)."""
    n, i, end = 0, 12, min(len(buf), 8 + int.from_bytes(bytes(buf[4:8]), "little"))
    while i + 8 <= end and n < MAX_COUNTED:
        size = int.from_bytes(bytes(buf[i + 4:i + 8]), "little")
        n += bytes(buf[i:i + 4]) == kind
        i += 8 + size + (size & 1)
    return n


def _gif_images(buf: bytes | memoryview) -> int:
    """How many images a GIF holds: its blocks walked from the header to the trailer (or the end of the data)."""
    def skip_sub_blocks(i: int) -> int:
        while i < len(buf) and buf[i]:
            i += 1 + buf[i]
        return i + 1

    if len(buf) < 13:
        return 1
    flags, i, n = buf[10], 13, 0
    if flags & 0x80:  # a global colour table
        i += 3 << ((flags & 7) + 1)
    while i < len(buf) and n < MAX_COUNTED:
        block = buf[i]
        if block == 0x2C:  # an image: its descriptor, a local colour table, the LZW code size, its data
            if i + 10 > len(buf):
                break
            local = buf[i + 9]
            i += 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0) + 1
            i = skip_sub_blocks(i)
            n += 1
        elif block == 0x21:  # an extension: its label, then its sub-blocks
            i = skip_sub_blocks(i + 2)
        else:  # 0x3B (the trailer) or anything else
            break
    return n


def _tiff_pages(buf: bytes | memoryview) -> int:
    """How many pages a TIFF or BigTIFF chains, following its next-IFD offsets (a loop stops the count). An IFD
    marked as a reduced-resolution copy of another (NewSubfileType bit 0, or the old SubfileType 2: a thumbnail
    or a pyramid level some cameras and scanners write after the image) or as a transparency mask (bit 2) is
    not a page: such a file holds one picture, and nothing was left out of its translation."""
    head = bytes(buf[:16])
    order = "little" if head[:2] == b"II" else "big"
    big = head[2:4] in (b"+\x00", b"\x00+")
    offset = int.from_bytes(head[8:16] if big else head[4:8], order)
    count, width, entry = (8, 8, 20) if big else (2, 4, 12)  # entry count, offset and IFD entry sizes
    seen: set[int] = set()
    n = ifds = 0
    while 0 < offset and offset + count <= len(buf) and offset not in seen and ifds < MAX_COUNTED:
        seen.add(offset)
        ifds += 1
        n += not _tiff_not_a_page(buf, order, offset, big)
        nxt = offset + count + int.from_bytes(bytes(buf[offset:offset + count]), order) * entry
        if nxt + width > len(buf):
            break
        offset = int.from_bytes(bytes(buf[nxt:nxt + width]), order)
    return n


def _tiff_not_a_page(buf: bytes | memoryview, order: str, off: int, big: bool) -> bool:
    """Whether the IFD at `off` describes a reduced-resolution image or a transparency mask (NewSubfileType, tag
    254, bits 0 or 2; SubfileType, tag 255, value 2), read from its SHORT or LONG value (tags are sorted, so the
    walk stops past 255, and after 1000 entries: a forged IFD is not read to its end)."""
    value_at = 12 if big else 8  # BigTIFF: tag, type, 8-byte count, value; TIFF: 4-byte count
    for e, tag, typ in itertools.islice(_entries(buf, order, off, big), 1000):
        if tag > 255:
            break
        if tag in (254, 255) and typ in (3, 4):
            value = int.from_bytes(bytes(buf[e + value_at:e + value_at + (2 if typ == 3 else 4)]), order)
            if (tag == 254 and value & 0b101) or (tag == 255 and value == 2):
                return True
    return False


def png_has_alpha(data: bytes | np.ndarray) -> bool:
    """True for a PNG with transparency: colour type gray + alpha or RGBA, or a tRNS chunk (a palette's or one
    colour's transparency, which OpenCV reads as a fourth channel)."""
    b = bytes(data[:26]) if not isinstance(data, bytes) else data[:26]
    if b[:8] != _PNG or b[12:16] != b"IHDR" or len(b) < 26:
        return False
    return b[25] in (4, 6) or b"tRNS" in png_chunks(data)


# ---- AVIF / HEIF (ISOBMFF) metadata: OpenCV writes an AVIF's ICC profile and EXIF data but does not read them ----
def _boxes(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISOBMFF boxes in buf[start:end]; stops at a malformed one."""
    i = start
    while i + 8 <= end:
        size, kind, body = int.from_bytes(buf[i:i + 4], "big"), buf[i + 4:i + 8], i + 8
        if size == 1 and i + 16 <= end:
            size, body = int.from_bytes(buf[i + 8:i + 16], "big"), i + 16
        elif size == 0:
            size = end - i
        if size < body - i or i + size > end:
            return
        yield kind, body, i + size
        i += size


def _child(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(buf, start, end) if k == kind), None)


def _uint(buf: bytes, at: int, n: int) -> int:
    if at + n > len(buf):
        raise ValueError("box cut short")
    return int.from_bytes(buf[at:at + n], "big")


@dataclass(frozen=True)
class HeifImage:
    """What an AVIF/HEIF file's boxes say of its primary image: its EXIF data (from the TIFF header on), ICC
    profile, stored size ('ispe', width x height) and the turns a viewer applies, in order: ("irot", n) for n
    quarter turns anticlockwise, ("imir", 0) top and bottom exchanged, ("imir", 1) left and right."""

    exif: bytes | None = None
    icc: bytes | None = None
    size: tuple[int, int] | None = None
    transforms: tuple[tuple[str, int], ...] = ()
    has_alpha: bool = False  # an auxiliary alpha image ('auxC' of type alpha)
    depth: int | None = None  # bits per sample ('pixi', else 'av1C')
    xmp: bytes | None = None  # the XMP packet (an item of type mime, application/rdf+xml)


#: the auxiliary image types of an alpha plane (AVIF's, HEVC's)
_ALPHA_URNS = (b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1")


def heif_image(data: bytes | np.ndarray) -> HeifImage:
    """The HeifImage of an AVIF/HEIF file, read from its boxes (the 'Exif' item located by 'iloc'; the 'colr'
    (prof/rICC), 'ispe', 'irot' and 'imir' properties 'ipma' gives the primary item); empty for what it lacks or
    a file this does not understand. Never raises."""
    buf = bytes(data)
    try:
        meta = _child(buf, 0, len(buf), b"meta")
        return HeifImage() if meta is None else _meta(buf, meta[0] + 4, meta[1])  # meta is a full box
    except (ValueError, IndexError):
        return HeifImage()


def _meta(buf: bytes, start: int, end: int) -> HeifImage:
    primary, exif_items, xmp_items, places, props, links = None, [], [], {}, [], {}
    for kind, s, e in _boxes(buf, start, end):
        version = buf[s] if s < e else 0
        if kind == b"pitm":
            primary = _uint(buf, s + 4, 2 if version == 0 else 4)
        elif kind == b"iinf":
            first = s + 4 + (2 if version == 0 else 4)
            for k, fs, fe in _boxes(buf, first, e):
                if k == b"infe" and buf[fs] >= 2:  # item_ID, protection index, item_type, name, [content type]
                    n = 2 if buf[fs] == 2 else 4
                    kind = buf[fs + 4 + n + 2:fs + 4 + n + 6]
                    if kind == b"Exif":
                        exif_items.append(_uint(buf, fs + 4, n))
                    elif kind == b"mime":
                        name_end = buf.find(b"\x00", fs + 4 + n + 6, fe)
                        content = buf[name_end + 1:fe].split(b"\x00")[0] if name_end >= 0 else b""
                        if content == b"application/rdf+xml":
                            xmp_items.append(_uint(buf, fs + 4, n))
        elif kind == b"iloc":
            places = _iloc(buf, s, e, version)
        elif kind == b"iprp":
            ipco = _child(buf, s, e, b"ipco")
            props = [] if ipco is None else [(k, ps, pe) for k, ps, pe in _boxes(buf, *ipco)]
            ipma = _child(buf, s, e, b"ipma")
            links = {} if ipma is None else _ipma(buf, *ipma)
    exif = icc = size = depth = xmp = None
    transforms: list[tuple[str, int]] = []
    for item in exif_items:
        place = places.get(item)
        if place is not None and place[1] >= 4 and place[0] + place[1] <= len(buf):
            blob = buf[place[0]:place[0] + place[1]]
            skip = 4 + int.from_bytes(blob[:4], "big")  # exif_tiff_header_offset
            if blob[skip:skip + 4] in CLASSIC_TIFF_MAGIC:
                exif = blob[skip:]
                break
    for item in xmp_items:
        place = places.get(item)
        if place is not None and place[0] + place[1] <= len(buf):
            xmp = buf[place[0]:place[0] + place[1]]
            break
    for index in links.get(primary, []):
        if not 1 <= index <= len(props):
            continue
        kind, ps, pe = props[index - 1]
        if kind == b"colr" and icc is None and buf[ps:ps + 4] in (b"prof", b"rICC") and pe - ps > 4:
            icc = buf[ps + 4:pe]
        elif kind == b"ispe" and pe - ps >= 12:  # a full box: width, height
            size = (_uint(buf, ps + 4, 4), _uint(buf, ps + 8, 4))
        elif kind == b"irot" and pe > ps:
            transforms.append(("irot", buf[ps] & 3))
        elif kind == b"imir" and pe > ps:
            transforms.append(("imir", buf[ps] & 1))
        elif kind == b"pixi" and pe - ps >= 6:  # a full box: channel count, then each one's bits
            depth = buf[ps + 5]
        elif kind == b"av1C" and pe - ps >= 3 and depth is None:  # high_bitdepth, twelve_bit flags
            depth = 12 if buf[ps + 2] & 0x20 else 10 if buf[ps + 2] & 0x40 else 8
    alpha = any(kind == b"auxC" and buf[ps + 4:pe].split(b"\x00")[0] in _ALPHA_URNS for kind, ps, pe in props)
    return HeifImage(exif, icc, size, tuple(transforms), alpha, depth, xmp)


def _iloc(buf: bytes, s: int, e: int, version: int) -> dict[int, tuple[int, int]]:
    """item_ID -> (file offset, length) of the items stored in one extent in the file itself."""
    sizes = _uint(buf, s + 4, 2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version in (1, 2) else 0
    at = s + 6
    count = _uint(buf, at, 2 if version < 2 else 4)
    at += 2 if version < 2 else 4
    places = {}
    for _ in range(count):
        item = _uint(buf, at, 2 if version < 2 else 4)
        at += 2 if version < 2 else 4
        method = 0
        if version in (1, 2):
            method = _uint(buf, at, 2) & 15
            at += 2
        at += 2  # data_reference_index
        base = _uint(buf, at, base_size) if base_size else 0
        at += base_size
        extents = _uint(buf, at, 2)
        at += 2
        spans = []
        for _ in range(extents):
            at += index_size
            offset = _uint(buf, at, offset_size) if offset_size else 0
            at += offset_size
            length = _uint(buf, at, length_size) if length_size else 0
            at += length_size
            spans.append((base + offset, length))
        if method == 0 and len(spans) == 1 and spans[0][1] > 0:
            places[item] = spans[0]
        if at > e:
            raise ValueError("iloc cut short")
    return places


def _ipma(buf: bytes, s: int, e: int) -> dict[int, list[int]]:
    """item_ID -> its properties' 1-based indices in 'ipco'."""
    version, flags = buf[s], _uint(buf, s + 1, 3)
    at = s + 4
    count = _uint(buf, at, 4)
    at += 4
    links = {}
    for _ in range(count):
        item = _uint(buf, at, 2 if version < 1 else 4)
        at += 2 if version < 1 else 4
        n = _uint(buf, at, 1)
        at += 1
        wide = flags & 1
        links[item] = [_uint(buf, at + k * (2 if wide else 1), 2 if wide else 1) & (0x7FFF if wide else 0x7F)
                       for k in range(n)]
        at += n * (2 if wide else 1)
        if at > e:
            raise ValueError("ipma cut short")
    return links
