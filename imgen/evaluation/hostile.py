"""Small hostile files (issue #19): tiny on disk, costly to decode or to process if taken at face value.

Used by the tests (tests/test_hostile.py) and by ``python -m benchmarks.request_cost``. Every builder returns the
file's bytes; nothing here decodes the pixels it declares.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int, mode: str = "L") -> bytes:
    """A valid PNG of ``width`` x ``height`` zero pixels ("L": gray; "RGBA": fully transparent), compressed
    row by row (so a 13000x13000 one needs no 169 MB buffer)."""
    colour, channels = {"L": (0, 1), "RGBA": (6, 4)}[mode]
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + width * channels)
    per = max(1, (1 << 22) // len(row))          # rows per block of about 4 MB
    block = row * per
    parts = [comp.compress(block) for _ in range(height // per)]
    parts += [comp.compress(row * (height % per)), comp.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def thin_png(length: int = 3_000_000, width: int = 1) -> bytes:
    """A ``width`` x ``length`` gray PNG (a 1 x 3,000,000 strip is about 12 KB)."""
    return flat_png(width, length)


def _segments(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment of a JPEG; a scan's segment runs to the next marker."""
    out, pos, n = [], 2, len(jpeg)
    while pos < n:
        marker, start = jpeg[pos + 1], pos
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        pos += 2 + int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            while not (jpeg[pos] == 0xFF and jpeg[pos + 1] not in (0x00, *range(0xD0, 0xD8))):
                pos += 1
        out.append((marker, start, pos))
    return out


def grey_jpeg(width: int = 6000, height: int = 6000) -> bytes:
    """A JPEG whose header declares ``width`` x ``height`` but whose data covers only a 64 x 64 picture, closed
    by a proper end marker (about 630 bytes). libjpeg fills the rest with grey and reports nothing."""
    b = io.BytesIO()
    Image.new("L", (64, 64), 90).save(b, "JPEG", quality=75)
    data = bytearray(b.getvalue())
    for marker, start, _ in _segments(bytes(data)):
        if marker == 0xC0:
            data[start + 5:start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def many_scans_jpeg(scans: int = 3000, side: int = 1024) -> bytes:
    """A progressive JPEG of ``side`` x ``side`` (flat gray) whose last refinement scan is repeated until it has
    ``scans`` scans: each costs libjpeg a pass over every block, and each is only a few bytes."""
    img = Image.new("L", (side, side), 90)
    b = io.BytesIO()
    img.save(b, "JPEG", quality=90, progressive=True)
    data = b.getvalue()
    segs = _segments(data)
    sos = [s for s in segs if s[0] == 0xDA]
    have = len(sos)
    last = data[sos[-1][1]:sos[-1][2]]
    end = segs[-1][1]
    return data[:end] + last * max(0, scans - have) + data[end:]


def ico_with_big_png(side: int = 13000) -> bytes:
    """An ICO whose directory declares one 16 x 16 icon but whose image is a ``side`` x ``side`` PNG."""
    png = flat_png(side, side)
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


def psd(width: int = 40, height: int = 32, layers: bool = False) -> bytes:
    """A minimal RGB Photoshop file (raw merged image; optionally one layer-less layer section)."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 255 // max(width - 1, 1)).astype(np.uint8), (y * 255 // max(height - 1, 1)).astype(np.uint8),
              np.full((height, width), 100, np.uint8)]
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    return (head + struct.pack(">I", 0) + struct.pack(">I", 0) + struct.pack(">I", 0)
            + struct.pack(">H", 0) + b"".join(p.tobytes() for p in planes))
