"""XMP metadata (Adobe's RDF/XML packet: keywords, ratings, titles, captions, creator and rights, Lightroom's and
phones' own fields) made fit to copy into a translated photo, and read from / written into JPEG files, whose XMP
OpenCV 5.0 neither reads nor writes readably (it leaves out the segment's namespace header), and PNG files, whose XMP chunk OpenCV 5.0 writes with bytes from
past the end of the packet. No torch, no OpenCV.

`xmp_for_copy` keeps what describes the photo and makes true what the translation changed: the orientation says 1
(the pixels are written upright) and the pixel dimensions are the output's. It drops what would be false or
harmful in the copy: Camera Raw / Lightroom develop settings (an editor would apply the photo's crop and edits to
the translation again), and the descriptions of data appended to the original file that the copy does not carry
(Ultra HDR and Apple gain maps, Google's motion-photo, depth and audio containers, extended XMP).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib

from cgan._images import png_walk

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
TIFF = "http://ns.adobe.com/tiff/1.0/"
EXIF = "http://ns.adobe.com/exif/1.0/"
#: namespaces whose properties are dropped from a copy (see the module)
DROPPED = (
    "http://ns.adobe.com/camera-raw-settings/1.0/",      # crs: develop settings
    "http://ns.adobe.com/hdr-gain-map/1.0/",             # hdrgm: Ultra HDR / ISO 21496 gain map
    "http://ns.apple.com/HDRGainMap/1.0/",               # Apple's gain map
    "http://ns.google.com/photos/1.0/container/",        # GContainer: the items appended to the file
    "http://ns.google.com/photos/1.0/container/item/",
    "http://ns.google.com/photos/1.0/camera/",           # GCamera: motion photo offsets
    "http://ns.google.com/photos/1.0/image/",            # GImage, GDepth, GAudio: embedded data
    "http://ns.google.com/photos/1.0/depthmap/",
    "http://ns.google.com/photos/1.0/audio/",
    "http://ns.adobe.com/xmp/note/",                     # xmpNote:HasExtendedXMP (segments not copied)
)
#: the pixel dimensions an output's own size replaces: (namespace, name) -> 0 for the width, 1 for the height
SIZES = {(EXIF, "PixelXDimension"): 0, (EXIF, "PixelYDimension"): 1, (TIFF, "ImageWidth"): 0,
         (TIFF, "ImageLength"): 1}
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_MAX_XMP = 65535 - 2 - len(JPEG_XMP_HEADER)  # one APP1 segment (extended XMP is not written)
_PACKET_START = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_END = b'\n<?xpacket end="w"?>'


def _split(tag: str) -> tuple[str, str]:
    return (tag[1:].split("}", 1)[0], tag.split("}", 1)[1]) if tag.startswith("{") else ("", tag)


MAX_XMP = 4 << 20  # a larger packet is not read (JPEG holds 64 KB; phones write a few KB)


def xmp_for_copy(packet: bytes, size: tuple[int, int], upright: bool = True) -> bytes | None:
    """The XMP `packet` for a translated copy of `size` (width, height) pixels (see the module; `upright`: the pixels
    were turned as the orientation said, which then says 1, else it is kept); None when it is not XMP this can
    read (not XML, no rdf:RDF, over MAX_XMP bytes)."""
    text = packet.rstrip(b"\x00 \t\r\n")
    if len(text) > MAX_XMP:
        return None
    try:
        prefixes = {}
        for _, (prefix, uri) in ET.iterparse(_Reader(text), events=("start-ns",)):
            prefixes.setdefault(uri, prefix)
        root = ET.fromstring(text)
    except (ET.ParseError, ValueError):
        return None
    if root.find(f".//{{{RDF}}}RDF") is None and _split(root.tag) != (RDF, "RDF"):
        return None
    for uri, prefix in prefixes.items():  # keep the packet's own prefixes where ElementTree allows them
        try:
            ET.register_namespace(prefix, uri)
        except ValueError:  # a reserved "ns0"-like prefix: ElementTree picks another
            pass
    for desc in root.iter(f"{{{RDF}}}Description"):
        for name in list(desc.attrib):
            ns, local = _split(name)
            if ns in DROPPED:
                del desc.attrib[name]
            elif (ns, local) == (TIFF, "Orientation") and upright:
                desc.attrib[name] = "1"
            elif (ns, local) in SIZES:
                desc.attrib[name] = str(size[SIZES[ns, local]])
        for child in list(desc):
            ns, local = _split(child.tag)
            if ns in DROPPED:
                desc.remove(child)
            elif (ns, local) == (TIFF, "Orientation") and len(child) == 0 and upright:
                child.text = "1"
            elif (ns, local) in SIZES and len(child) == 0:
                child.text = str(size[SIZES[ns, local]])
    return _PACKET_START + ET.tostring(root, encoding="utf-8", xml_declaration=False) + _PACKET_END


class _Reader:
    """A file-like object over bytes for iterparse (which wants one)."""

    def __init__(self, data: bytes):
        self._data, self._at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._at + n
        chunk, self._at = self._data[self._at:end], min(end, len(self._data))
        return chunk


def jpeg_xmp(data: bytes | memoryview) -> bytes | None:
    """The XMP packet of a JPEG file's APP1 XMP segment (None without one); `data` may be a memoryview (only the
    segment is copied)."""
    i = 2
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xDA, 0xD9) or length < 2:  # the image data starts: no more metadata segments
            return None
        if marker == 0xE1 and bytes(data[i + 4:i + 4 + len(JPEG_XMP_HEADER)]) == JPEG_XMP_HEADER:
            return bytes(data[i + 4 + len(JPEG_XMP_HEADER):i + 2 + length])
        i += 2 + length
    return None


def jpeg_with_xmp(jpeg: bytes, packet: bytes) -> bytes:
    """`jpeg` with `packet` in an APP1 XMP segment after its other APPn segments (at most JPEG_MAX_XMP bytes)."""
    if len(packet) > JPEG_MAX_XMP:
        raise ValueError(f"an XMP packet of {len(packet)} bytes does not fit one JPEG segment")
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF and 0xE0 <= jpeg[i + 1] <= 0xEF:
        i += 2 + int.from_bytes(jpeg[i + 2:i + 4], "big")
    segment = b"\xff\xe1" + (2 + len(JPEG_XMP_HEADER) + len(packet)).to_bytes(2, "big") + JPEG_XMP_HEADER + packet
    return jpeg[:i] + segment + jpeg[i:]


PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"


def png_xmp(data: bytes | memoryview) -> bytes | None:
    """The XMP packet of a PNG's iTXt chunk (keyword XML:com.adobe.xmp, zlib-compressed or not) before its image
    data; None without one."""
    for kind, body in png_walk(data):
        if kind == b"iTXt" and bytes(body[:len(PNG_XMP_KEYWORD) + 1]) == PNG_XMP_KEYWORD + b"\x00":
            rest = bytes(body[len(PNG_XMP_KEYWORD) + 1:])
            if len(rest) < 2:
                return None
            compressed, text = rest[0], rest[2:]
            text = text.split(b"\x00", 2)[-1]  # after the language tag and the translated keyword
            try:
                return zlib.decompress(text) if compressed else text
            except zlib.error:
                return None
    return None


def png_with_xmp(png: bytes, packet: bytes) -> bytes:
    """`png` with `packet` in an uncompressed iTXt chunk (keyword XML:com.adobe.xmp) right after its IHDR."""
    body = PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet  # no compression, no language, no translation
    chunk = len(body).to_bytes(4, "big") + b"iTXt" + body + zlib.crc32(b"iTXt" + body).to_bytes(4, "big")
    at = 8 + 12 + int.from_bytes(png[8:12], "big")  # after the signature and IHDR
    return png[:at] + chunk + png[at:]
