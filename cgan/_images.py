"""Image headers read without decoding (no torch, no OpenCV): the size a PNG or JPEG declares, and whether a
PNG has an alpha channel. The trainer and the runtime's photo mode refuse decompression bombs with them before
OpenCV allocates anything."""
from __future__ import annotations

import numpy as np

_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers (not DHT, JPG, DAC)
_PNG = b"\x89PNG\r\n\x1a\n"


def declared_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG file declares in its header, without decoding it; None for other formats
    or a header this does not understand (OpenCV then decides)."""
    b = bytes(data[:32]) if not isinstance(data, bytes) else data[:32]
    if b[:8] == _PNG and b[12:16] == b"IHDR" and len(b) >= 24:
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    if b[:2] != b"\xff\xd8":
        return None
    buf = data if isinstance(data, bytes) else memoryview(data)
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


def png_has_alpha(data: bytes | np.ndarray) -> bool:
    """True for a PNG whose header declares gray + alpha or RGBA (colour types 4 and 6). A palette PNG's
    transparency (a tRNS chunk) is not looked for."""
    b = bytes(data[:26]) if not isinstance(data, bytes) else data[:26]
    return b[:8] == _PNG and b[12:16] == b"IHDR" and len(b) >= 26 and b[25] in (4, 6)
