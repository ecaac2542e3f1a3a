"""Our metadata inside media bytes: the JSON wrapper, GIF comment extensions, WebP XMP chunks,
PNG text chunks (of an animated PNG written by FFmpeg).

Files this tool writes carry a small dict of provenance strings (``synthetic``, the model...).
Where a format has no key/value tags (EXIF ImageDescription, GIF comments, XMP) the dict is
stored as one JSON object under :data:`METADATA_MARKER`, so that a reader can tell it from
other text in the same field. These are byte-level functions with no FFmpeg or Pillow.
"""

from __future__ import annotations

import json
import struct
import zlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from xml.sax.saxutils import escape

METADATA_MARKER = "facedancer-metadata"


def wrap_metadata_json(metadata: dict[str, str]) -> str:
    """``metadata`` as ASCII JSON under :data:`METADATA_MARKER` (ASCII keeps it valid in EXIF
    ASCII fields whatever the values contain)."""
    payload = {str(k): str(v) for k, v in metadata.items()}
    return json.dumps({METADATA_MARKER: payload}, ensure_ascii=True, sort_keys=True)


def unwrap_metadata_json(text: str) -> dict[str, str]:
    """The dict :func:`wrap_metadata_json` stored in ``text``, or ``{}`` for any other text."""
    try:
        payload = json.loads(text)
    except ValueError:
        return {}
    if isinstance(payload, dict) and isinstance(payload.get(METADATA_MARKER), dict):
        return {str(k): str(v) for k, v in payload[METADATA_MARKER].items()}
    return {}


def gif_insert_comment(data: bytes, text: str) -> bytes:
    """Insert a GIF89a Comment Extension right after the header and global colour table."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF file")
    flags = data[10]
    offset = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    raw = text.encode("utf-8")
    blocks = b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255]
                      for i in range(0, len(raw), 255))
    return b"GIF89a" + data[6:offset] + b"\x21\xfe" + blocks + b"\x00" + data[offset:]


def _gif_extensions(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(label, offset of its ``0x21`` byte, payload) of each extension block of a GIF file,
    walking its block structure."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF file")

    def skip_sub_blocks(pos: int) -> tuple[int, bytes]:
        chunks = []
        while pos < len(data) and data[pos] != 0:
            size = data[pos]
            chunks.append(data[pos + 1:pos + 1 + size])
            pos += 1 + size
        return pos + 1, b"".join(chunks)

    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension
            start, label = pos, data[pos + 1]
            pos, payload = skip_sub_blocks(pos + 2)
            yield label, start, payload
        elif block == 0x2C:  # image descriptor (+ local colour table) + LZW data
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos, _ = skip_sub_blocks(pos + 1)  # +1: LZW minimum code size
        else:
            break  # corrupt: stop rather than loop


def gif_comments(data: bytes) -> list[str]:
    """Every Comment Extension of a GIF file."""
    return [payload.decode("utf-8", "replace") for label, _, payload in _gif_extensions(data)
            if label == 0xFE]


def xmp_packet(metadata: dict[str, str]) -> bytes:
    """An XMP packet carrying ``metadata`` as JSON in ``dc:description`` (readers such as
    exiftool show it; :func:`parse_xmp` reads it back)."""
    text = wrap_metadata_json(metadata)
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f'{escape(text)}</rdf:li></rdf:Alt></dc:description>'
            '</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode("utf-8")


def parse_xmp(xmp: bytes) -> dict[str, str]:
    """The metadata :func:`xmp_packet` stored, or ``{}`` for other XMP."""
    try:
        root = ET.fromstring(xmp.decode("utf-8", "replace").strip("\x00"))
    except ET.ParseError:
        return {}
    for element in root.iter():
        payload = unwrap_metadata_json(element.text or "")
        if payload:
            return payload
    return {}


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(fourcc, payload offset, payload size) of each top-level chunk of a WebP file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield fourcc, pos + 8, size
        pos += 8 + size + (size & 1)


def webp_is_lossless(data: bytes) -> bool:
    """Whether a (still) WebP file's picture is coded lossless: a ``VP8L`` bitstream chunk
    (a lossy one is ``VP8 ``)."""
    return any(fourcc == b"VP8L" for fourcc, _, _ in _riff_chunks(data))


def webp_insert_xmp(data: bytes, xmp: bytes) -> bytes:
    """Append an ``XMP `` chunk to an extended (VP8X) WebP file and set its XMP flag."""
    chunks = list(_riff_chunks(data))
    if not chunks or chunks[0][0] != b"VP8X":
        raise ValueError("only extended (VP8X) WebP files can carry XMP")
    body = bytearray(data[12:])
    body[8] |= 0x04  # VP8X flags byte: XMP metadata present
    chunk = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) & 1 else b"")
    body += chunk
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


def webp_xmp(data: bytes) -> bytes | None:
    """The payload of the first ``XMP `` chunk of a WebP file, or None."""
    for fourcc, offset, size in _riff_chunks(data):
        if fourcc == b"XMP ":
            return data[offset:offset + size]
    return None



_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_insert_text(data: bytes, metadata: dict[str, str]) -> bytes:
    """Insert one text chunk per key right after a PNG's ``IHDR`` chunk: ``tEXt`` for ASCII
    text, ``iTXt`` (UTF-8) otherwise, as Pillow writes a still PNG's metadata, so that every
    PNG reader (Pillow's ``text``, exiftool) lists it. Works on animated PNGs too: text chunks
    may stand anywhere before the image data."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    end_of_header = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    chunks = []
    for key, value in metadata.items():
        key_bytes, text = str(key).encode("latin-1", "replace")[:79], str(value)
        if text.isascii():
            chunks.append(_png_chunk(b"tEXt", key_bytes + b"\x00" + text.encode("ascii")))
        else:  # iTXt: uncompressed, no language tag, no translated key
            chunks.append(_png_chunk(b"iTXt", key_bytes + b"\x00\x00\x00\x00\x00"
                                     + text.encode("utf-8")))
    return data[:end_of_header] + b"".join(chunks) + data[end_of_header:]


def png_insert_iccp(data: bytes, profile: bytes) -> bytes:
    """Insert an ``iCCP`` chunk (the colour profile, deflated) right after a PNG's ``IHDR``
    (it must come before the image data)."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    end_of_header = 8 + 12 + struct.unpack(">I", data[8:12])[0]
    chunk = _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(profile))
    return data[:end_of_header] + chunk + data[end_of_header:]


def png_text(data: bytes) -> dict[str, str]:
    """The uncompressed ``tEXt`` and ``iTXt`` chunks of a PNG file (as
    :func:`png_insert_text` writes them), walking its chunks."""
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I", data[pos:pos + 4])[0], data[pos + 4:pos + 8]
        payload = data[pos + 8:pos + 8 + size]
        if kind == b"tEXt" and b"\x00" in payload:
            key, _, value = payload.partition(b"\x00")
            found[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt" and payload.count(b"\x00") >= 3:
            key, _, rest = payload.partition(b"\x00")
            if rest[:1] == b"\x00":  # not compressed
                _, _, rest = rest[2:].partition(b"\x00")  # language tag
                _, _, value = rest.partition(b"\x00")  # translated keyword
                found[key.decode("latin-1")] = value.decode("utf-8", "replace")
        elif kind == b"IEND":
            break
        pos += 12 + size
    return found


def set_last_frame_duration(data: bytes, seconds: float) -> bytes:
    """An animated GIF, WebP or PNG with its last frame shown for ``seconds``.

    A frame's time on screen is the gap to the next one; for the last frame FFmpeg's encoders
    guess (one frame at the stream's rate, or the previous frame's delay), which turned a
    sticker's one-second hold at the end of its loop into 66 ms. The source's own duration is
    written into the last frame's delay field: a GIF Graphic Control Extension (1/100 s), a
    WebP ``ANMF`` chunk (ms), an APNG ``fcTL`` chunk (a fraction, its CRC redone)."""
    out = bytearray(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        controls = [start for label, start, _ in _gif_extensions(data) if label == 0xF9]
        if controls:  # 0x21 0xF9, size 4, flags, then the delay
            found = controls[-1]
            out[found + 4:found + 6] = struct.pack("<H", max(1, min(65535, round(seconds * 100))))
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        frames = [offset for fourcc, offset, _ in _riff_chunks(data) if fourcc == b"ANMF"]
        if frames:
            ms = max(0, min(0xFFFFFF, round(seconds * 1000)))
            out[frames[-1] + 12:frames[-1] + 15] = ms.to_bytes(3, "little")
    elif data[:8] == _PNG_SIGNATURE:
        found = None
        pos = 8
        while pos + 8 <= len(data):
            size = struct.unpack(">I", data[pos:pos + 4])[0]
            if data[pos + 4:pos + 8] == b"fcTL":
                found = pos
            pos += 12 + size
        if found is not None:
            payload = bytearray(data[found + 8:found + 8 + 26])
            payload[20:24] = struct.pack(">HH", max(0, min(65535, round(seconds * 1000))), 1000)
            out[found:found + 12 + 26] = _png_chunk(b"fcTL", bytes(payload))
    else:
        raise ValueError("not an animated GIF, WebP or PNG")
    return bytes(out)
