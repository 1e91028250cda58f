"""XMP metadata (Adobe's RDF/XML packet: keywords, ratings, titles, captions, creator and rights, Lightroom's and
phones' own fields) made fit to copy into a translated photo, and read from / written into JPEG files, whose XMP
segment OpenCV 5.0 writes without its namespace header, and PNG files, whose XMP chunk OpenCV 5.0 writes with bytes
from past the end of the packet. No torch, no OpenCV.

`xmp_for_copy` keeps what describes the photo and makes true what the translation changed: the orientation says 1
(the pixels are written upright) and the pixel dimensions are the output's. It drops what would be false or
harmful in the copy: Camera Raw / Lightroom develop settings (an editor would apply the photo's crop and edits to
the translation again), and the descriptions of data appended to the original file that the copy does not carry
(Ultra HDR and Apple gain maps, Google's motion-photo, depth and audio containers, extended XMP).
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zlib

from cgan._images import jpeg_metadata_segments, jpeg_with_segment, png_walk

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
TIFF = "http://ns.adobe.com/tiff/1.0/"
EXIF = "http://ns.adobe.com/exif/1.0/"
#: namespaces whose properties are dropped from a copy (see the module)
DROPPED = (
    "http://ns.adobe.com/camera-raw-settings/1.0/",      # crs: develop settings
    "http://ns.adobe.com/camera-raw-defaults/1.0/",      # crd: their defaults
    "http://ns.adobe.com/photoshop/1.0/camera-profile",  # crlcp: lens profile corrections
    "http://ns.adobe.com/hdr-gain-map/1.0/",             # hdrgm: Ultra HDR / ISO 21496 gain map
    "http://ns.apple.com/HDRGainMap/1.0/",               # Apple's gain map
    "http://ns.apple.com/pixeldatainfo/1.0/",            # apdi: Apple's auxiliary images (depth, mattes)
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
MAX_DEPTH = 64  # deeper nesting is not XMP anyone writes (and would exhaust the writer's recursion)
XML_NS = "http://www.w3.org/XML/1998/namespace"


def _text(packet: bytes) -> str | None:
    """The packet as text: UTF-8 or UTF-16 (by its BOM or its first bytes), without blanks or NULs around it,
    without an XML declaration (the text is parsed as text), and cut after its end (OpenCV 5.0 leaves stray bytes
    after a PNG tEXt packet)."""
    head = packet[:4]
    encoding = ("utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le" if head[:2] == b"<\x00"
                else "utf-16-be" if head[:2] == b"\x00<" else "utf-8")
    if encoding == "utf-8":  # or what its XML declaration names (Latin-1 ones exist)
        declared = re.match(rb'\s*<\?xml[^>]*encoding=["\']([A-Za-z0-9._-]+)["\']', packet[:200])
        encoding = declared.group(1).decode() if declared else encoding
    try:
        text = packet.decode(encoding, errors="replace" if encoding.startswith("utf-8") else "strict")
    except (UnicodeDecodeError, LookupError):
        text = packet.decode("utf-8", errors="replace")
    text = text.strip("\ufeff\x00 \t\r\n")
    if text.startswith("<?xml"):
        text = text[text.find("?>") + 2:].lstrip()
    for closing in ("<?xpacket end=", "</x:xmpmeta>", "</rdf:RDF>"):
        at = text.rfind(closing)
        if at >= 0:
            stop = text.find(">", at + len(closing) - 1)
            return text[:stop + 1] if stop >= 0 else text
    return text


def xmp_for_copy(packet: bytes, size: tuple[int, int], upright: bool = True) -> bytes | None:
    """The XMP `packet` for a translated copy of `size` (width, height) pixels (see the module; `upright`: the pixels
    were turned as the orientation said, which then says 1, else it is kept); None when it is not XMP this can
    read (not XML, no rdf:RDF, over MAX_XMP bytes or MAX_DEPTH levels). UTF-8 out, whatever came in."""
    if len(packet) > MAX_XMP:
        return None
    text = _text(packet)
    if not text:
        return None
    try:
        prefixes: dict[str, str] = {}
        for _, (prefix, uri) in ET.iterparse(io.StringIO(text), events=("start-ns",)):
            prefixes.setdefault(uri, prefix)
        root = ET.fromstring(text)
    except (ET.ParseError, ValueError, RecursionError):
        return None
    if _depth(root) > MAX_DEPTH:
        return None
    rdf = root if _split(root.tag) == (RDF, "RDF") else root.find(f".//{{{RDF}}}RDF")
    if rdf is None:
        return None
    for desc in rdf.findall(f"{{{RDF}}}Description"):  # the photo's own (nested ones describe other things)
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
    return _PACKET_START + _serialize(root, prefixes).encode("utf-8") + _PACKET_END


def _depth(root: ET.Element) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in node)
    return deepest


def _serialize(root: ET.Element, prefixes: dict[str, str]) -> str:
    """`root` as XML with the packet's own prefixes where they are usable (others get ns0, ns1, ...), every
    namespace declared on the root. ElementTree's own writer takes prefixes from one registry for the whole
    process, which threads writing photos at once would change under each other."""
    used = [_split(name)[0] for node in root.iter() for name in (node.tag, *node.attrib)]
    names: dict[str, str] = {XML_NS: "xml"}
    for uri in dict.fromkeys(u for u in used if u and u != XML_NS):
        prefix = prefixes.get(uri, "")
        if not prefix or prefix == "xml" or prefix in names.values() or prefix.startswith("xmlns"):
            prefix = next(f"ns{i}" for i in range(len(names) + 1) if f"ns{i}" not in names.values())
        names[uri] = prefix

    def qname(name: str) -> str:
        uri, local = _split(name)
        return f"{names[uri]}:{local}" if uri else local

    out: list[str] = []
    stack: list[tuple[ET.Element, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            out.append(f"</{qname(node.tag)}>{_escape_text(node.tail or '')}")
            continue
        attrs = "".join(f' {qname(k)}="{_escape_attr(v)}"' for k, v in node.attrib.items())
        if node is root:
            attrs = "".join(f' xmlns:{p}="{_escape_attr(u)}"' for u, p in names.items() if u != XML_NS) + attrs
        out.append(f"<{qname(node.tag)}{attrs}>{_escape_text(node.text or '')}")
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node)))
    return "".join(out)


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _escape_attr(text: str) -> str:
    return (_escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;"))


def jpeg_xmp(data: bytes | memoryview) -> bytes | None:
    """The XMP packet of a JPEG file's APP1 XMP segment (None without one); `data` may be a memoryview (only the
    segment is copied)."""
    for marker, start, end in jpeg_metadata_segments(data):
        if marker == 0xE1 and bytes(data[start:start + len(JPEG_XMP_HEADER)]) == JPEG_XMP_HEADER:
            return bytes(data[start + len(JPEG_XMP_HEADER):end])
    return None


def jpeg_with_xmp(jpeg: bytes, packet: bytes) -> bytes:
    """`jpeg` with `packet` in an APP1 XMP segment after its other APPn segments (at most JPEG_MAX_XMP bytes)."""
    if len(packet) > JPEG_MAX_XMP:
        raise ValueError(f"an XMP packet of {len(packet)} bytes does not fit one JPEG segment")
    return jpeg_with_segment(jpeg, 0xE1, JPEG_XMP_HEADER + packet)


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
            if not compressed:
                return text
            inflate = zlib.decompressobj()
            try:  # at most MAX_XMP bytes: a small chunk may inflate to gigabytes
                packet = inflate.decompress(text, MAX_XMP + 1)
            except zlib.error:
                return None
            return None if len(packet) > MAX_XMP or inflate.unconsumed_tail else packet
    return None


def png_with_xmp(png: bytes, packet: bytes) -> bytes:
    """`png` with `packet` in an uncompressed iTXt chunk (keyword XML:com.adobe.xmp) right after its IHDR."""
    body = PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet  # no compression, no language, no translation
    chunk = len(body).to_bytes(4, "big") + b"iTXt" + body + zlib.crc32(b"iTXt" + body).to_bytes(4, "big")
    at = 8 + 12 + int.from_bytes(png[8:12], "big")  # after the signature and IHDR
    return png[:at] + chunk + png[at:]
