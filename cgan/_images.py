"""Image headers read without decoding (no torch, no OpenCV): the size a PNG, JPEG, TIFF, WebP, BMP or AVIF file
declares, a PNG's transparency and EXIF orientation, and EXIF data made fit to copy into a translated photo.
The trainer and the runtime's photo mode refuse decompression bombs with them before OpenCV allocates anything
(other formats: OpenCV's own limit, OPENCV_IO_MAX_IMAGE_PIXELS, which the CLIs set before OpenCV loads)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import numpy as np

_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers (not DHT, JPG, DAC)
_PNG = b"\x89PNG\r\n\x1a\n"
#: EXIF tags: Orientation (IFD0), the Exif sub-IFD's offset (IFD0), PixelXDimension and PixelYDimension (Exif IFD)
ORIENTATION, _EXIF_IFD, _PIXEL_DIMENSIONS = 0x0112, 0x8769, (0xA002, 0xA003)


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
    if b[:4] in (b"II*\x00", b"MM\x00*"):
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
        if buf[i] != 0xFF:
            return None
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


def _tiff(buf: bytes | memoryview, order: str) -> tuple[int, int] | None:
    """ImageWidth (tag 256) and ImageLength (257) of the first IFD (the page OpenCV reads)."""
    size = _ifd0(buf, order, (256, 257))
    return (size[256], size[257]) if len(size) == 2 else None


def _entries(buf: bytes | bytearray | memoryview, order: str, off: int) -> Iterator[tuple[int, int, int]]:
    """(offset, tag, type) of each 12-byte entry of the TIFF IFD at `off` (as far as the data holds them)."""
    n = len(buf)
    if off < 8 or off + 2 > n:
        return
    for k in range(int.from_bytes(buf[off:off + 2], order)):
        e = off + 2 + 12 * k
        if e + 12 > n:
            return
        yield e, int.from_bytes(buf[e:e + 2], order), int.from_bytes(buf[e + 2:e + 4], order)


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


def _png_walk(data: bytes | np.ndarray) -> Iterator[tuple[bytes, bytes | memoryview]]:
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
    return [kind for kind, _ in _png_walk(data)]


def png_orientation(data: bytes | np.ndarray) -> int | None:
    """The EXIF Orientation (1..8) of a PNG's eXIf chunk, or None (no chunk, no tag, a value out of range)."""
    body = next((body for kind, body in _png_walk(data) if kind == b"eXIf"), None)
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


def png_has_alpha(data: bytes | np.ndarray) -> bool:
    """True for a PNG with transparency: colour type gray + alpha or RGBA, or a tRNS chunk (a palette's or one
    colour's transparency, which OpenCV reads as a fourth channel)."""
    b = bytes(data[:26]) if not isinstance(data, bytes) else data[:26]
    if b[:8] != _PNG or b[12:16] != b"IHDR" or len(b) < 26:
        return False
    return b[25] in (4, 6) or b"tRNS" in png_chunks(data)
