"""IPTC-IIM, the captions, keywords, credit and copyright that Photoshop, Lightroom, Photo Mechanic and news
agencies' tools write into a JPEG's APP13 "Photoshop 3.0" segment, read from a photo and written into its
translated JPEG copy (cgan.runtime.photos). No torch, no OpenCV (which reads and writes no APP13).

What is copied: the IPTC record (Photoshop image resource 0x0404) without what the copy does not show -- the
object preview (datasets 2:200-2:202, a small copy of the *untranslated* photo) and the object data records 7-9 --
and the IPTC digest (resource 0x0425), which tells Photoshop and the Metadata Working Group's readers whether the
IPTC record is still the one written beside the XMP: one that matched the photo's record is made to match the
copy's (the datasets dropped are not in the XMP), one that did not is copied as it is. The other image resources
(Photoshop's thumbnail of the original, its paths, print and slice settings) stay behind.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

from cgan._images import jpeg_metadata_segments, jpeg_with_segment

PHOTOSHOP = b"Photoshop 3.0\x00"
IPTC_ID, DIGEST_ID = 0x0404, 0x0425
_SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")  # image resource blocks (8BIM nearly always)
_PREVIEW = range(200, 203)  # record 2's object preview file format, version and data
MAX_IRB = 1 << 24  # Photoshop data read from a JPEG at most (APP13 segments of 64 KB each; files hold a few KB)
#: the most image resources one APP13 segment holds (more go on in the next one)
JPEG_MAX_IRB = 65535 - 2 - len(PHOTOSHOP)


def jpeg_photoshop(data: bytes | memoryview) -> bytes | None:
    """The Photoshop image resources of a JPEG's APP13 "Photoshop 3.0" segments before its image data, joined
    (Photoshop splits what does not fit one segment over several); None without any."""
    parts, size = [], 0
    for marker, start, end in jpeg_metadata_segments(data):
        if marker == 0xED and bytes(data[start:start + len(PHOTOSHOP)]) == PHOTOSHOP:
            part = bytes(data[start + len(PHOTOSHOP):end])
            size += len(part)
            if size > MAX_IRB:
                return None
            parts.append(part)
    return b"".join(parts) if parts else None


def has_iptc(irb: bytes | None) -> bool:
    """Whether Photoshop data `irb` holds an IPTC record."""
    return irb is not None and any(rid == IPTC_ID for rid, _ in resources(irb))


def resources(irb: bytes) -> Iterator[tuple[int, bytes]]:
    """(resource id, data) of each image resource block in `irb`, up to the first that is cut short or not one."""
    i = 0
    while i + 7 <= len(irb) and irb[i:i + 4] in _SIGNATURES:
        rid, name = int.from_bytes(irb[i + 4:i + 6], "big"), irb[i + 6]
        at = i + 6 + ((name + 2) & ~1)  # the Pascal-string name, padded to an even length
        if at + 4 > len(irb):
            return
        size = int.from_bytes(irb[at:at + 4], "big")
        if at + 4 + size > len(irb):
            return
        yield rid, irb[at + 4:at + 4 + size]
        i = at + 4 + size + (size & 1)


def datasets(record: bytes) -> list[tuple[int, int, bytes]] | None:
    """(record number, dataset number, value) of every IPTC-IIM dataset in `record`; None when it is not IIM (a
    dataset without its 0x1C tag marker, or cut short). Trailing zero padding is allowed."""
    found, i = [], 0
    while i < len(record):
        if record[i] == 0 and not record[i:].strip(b"\x00"):
            break
        if record[i] != 0x1C or i + 5 > len(record):
            return None
        rec, num, size = record[i + 1], record[i + 2], int.from_bytes(record[i + 3:i + 5], "big")
        i += 5
        if size & 0x8000:  # an extended dataset: the next (size & 0x7FFF) bytes give its length
            n = size & 0x7FFF
            if not 0 < n <= 4 or i + n > len(record):
                return None
            size, i = int.from_bytes(record[i:i + n], "big"), i + n
        if i + size > len(record):
            return None
        found.append((rec, num, record[i:i + size]))
        i += size
    return found


def _encoded(items: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray()
    for rec, num, value in items:
        head = len(value).to_bytes(2, "big") if len(value) < 0x8000 else \
            (0x8004).to_bytes(2, "big") + len(value).to_bytes(4, "big")
        out += bytes((0x1C, rec, num)) + head + value
    return bytes(out)


def iptc_for_copy(irb: bytes) -> bytes | None:
    """The image resources for a translated copy of the photo whose Photoshop data is `irb`: its IPTC record
    without the preview and object data, and its digest as the module says; b"" when there is no IPTC record or
    nothing is left of it, None when the record is not IPTC-IIM."""
    found = dict(resources(irb))
    record = found.get(IPTC_ID)
    if record is None:
        return b""
    items = datasets(record)
    if items is None:
        return None
    kept = [(rec, num, value) for rec, num, value in items if rec < 7 and not (rec == 2 and num in _PREVIEW)]
    if not kept:
        return b""
    copy = _encoded(kept)
    out = _resource(IPTC_ID, copy)
    digest = found.get(DIGEST_ID)
    if digest is not None and len(digest) == 16:
        out += _resource(DIGEST_ID, hashlib.md5(copy).digest() if digest == hashlib.md5(record).digest() else digest)
    return out


def _resource(rid: int, data: bytes) -> bytes:
    return b"8BIM" + rid.to_bytes(2, "big") + b"\x00\x00" + len(data).to_bytes(4, "big") + data + b"\x00" * (
        len(data) & 1)


def jpeg_with_photoshop(jpeg: bytes, irb: bytes) -> bytes:
    """`jpeg` with `irb` (image resources, of iptc_for_copy) in APP13 "Photoshop 3.0" segments after its other
    APPn segments: one, or as Photoshop does for more than one holds, consecutive ones that readers join."""
    for at in range(0, len(irb), JPEG_MAX_IRB):
        jpeg = jpeg_with_segment(jpeg, 0xED, PHOTOSHOP + irb[at:at + JPEG_MAX_IRB])
    return jpeg
