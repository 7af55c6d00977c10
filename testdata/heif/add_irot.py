#!/usr/bin/env python3
"""Adds an `irot` (image rotation) property to the primary item of a HEIF/AVIF file.

heif-enc 1.15 keeps a JPEG's EXIF Orientation tag but never writes `irot`, while iPhones write
both. This rewrites the file the way an iPhone would have stored it: `irot` in `ipco`, associated
with the primary item in `ipma`, and every file offset in `iloc` moved by the bytes inserted.

usage: add_irot.py IN OUT ANGLE   (ANGLE: anticlockwise quarter turns, 0..3)
"""
import struct
import sys


def boxes(buf, start, end):
    """(type, box start, payload start, box end) of each box in buf[start:end]."""
    pos = start
    while pos < end:
        size, typ = struct.unpack(">I4s", buf[pos : pos + 8])
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", buf[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = end - pos
        yield typ.decode("latin-1"), pos, pos + header, pos + size
        pos += size


def child(buf, start, end, name):
    for typ, b, p, e in boxes(buf, start, end):
        if typ == name:
            return b, p, e
    raise SystemExit(f"no {name} box")


def read_uint(buf, pos, size):
    return int.from_bytes(buf[pos : pos + size], "big"), pos + size


def shift_iloc(buf, p, delta, after):
    """Adds delta to every file offset (construction method 0) at or past `after`."""
    version = buf[p]
    pos = p + 4
    offset_size, length_size = buf[pos] >> 4, buf[pos] & 15
    base_offset_size, index_size = buf[pos + 1] >> 4, buf[pos + 1] & 15
    if version == 0:
        index_size = 0
    pos += 2
    count, pos = read_uint(buf, pos, 2 if version < 2 else 4)
    for _ in range(count):
        _, pos = read_uint(buf, pos, 2 if version < 2 else 4)
        method = 0
        if version in (1, 2):
            method, pos = read_uint(buf, pos, 2)
            method &= 15
        pos += 2  # data_reference_index
        base_pos = pos
        base, pos = read_uint(buf, pos, base_offset_size)
        extents, pos = read_uint(buf, pos, 2)
        if method == 0 and base_offset_size and base >= after:
            buf[base_pos : base_pos + base_offset_size] = (base + delta).to_bytes(
                base_offset_size, "big"
            )
        for _ in range(extents):
            pos += index_size
            off_pos = pos
            off, pos = read_uint(buf, pos, offset_size)
            if method == 0 and base == 0 and off >= after:
                buf[off_pos : off_pos + offset_size] = (off + delta).to_bytes(offset_size, "big")
            pos += length_size


def main():
    src, dst, angle = sys.argv[1], sys.argv[2], int(sys.argv[3])
    buf = bytearray(open(src, "rb").read())
    meta_b, meta_p, meta_e = child(buf, 0, len(buf), "meta")
    meta_p += 4  # full box
    (primary,) = struct.unpack(">H", buf[child(buf, meta_p, meta_e, "pitm")[1] + 4 :][:2])
    iprp_b, iprp_p, iprp_e = child(buf, meta_p, meta_e, "iprp")
    ipco_b, ipco_p, ipco_e = child(buf, iprp_p, iprp_e, "ipco")
    irot_index = sum(1 for _ in boxes(buf, ipco_p, ipco_e)) + 1
    ipma_b, ipma_p, ipma_e = child(buf, iprp_p, iprp_e, "ipma")

    # The new association, appended to the primary item's list in ipma.
    version, flags = buf[ipma_p], buf[ipma_p + 3]
    wide_index = flags & 1
    id_size = 2 if version < 1 else 4
    assoc = (0x8000 | irot_index).to_bytes(2, "big") if wide_index else bytes([0x80 | irot_index])
    pos = ipma_p + 4
    entries, pos = read_uint(buf, pos, 4)
    insert_at = None
    for _ in range(entries):
        item, pos = read_uint(buf, pos, id_size)
        count_pos = pos
        count, pos = read_uint(buf, pos, 1)
        pos += count * (2 if wide_index else 1)
        if item == primary:
            buf[count_pos] = count + 1
            insert_at = pos
    if insert_at is None:
        raise SystemExit("primary item has no ipma entry")

    irot = struct.pack(">I4sB", 9, b"irot", angle & 3)
    # Insert the later one first so the earlier position stays valid.
    inserts = sorted([(ipco_e, irot), (insert_at, assoc)], reverse=True)
    delta = len(irot) + len(assoc)
    for at, data in inserts:
        buf[at:at] = data
    ipma_b += len(irot)  # ipma comes after ipco
    for box_start, grow in [(meta_b, delta), (iprp_b, delta), (ipco_b, len(irot)), (ipma_b, len(assoc))]:
        (size,) = struct.unpack(">I", buf[box_start : box_start + 4])
        buf[box_start : box_start + 4] = struct.pack(">I", size + grow)
    shift_iloc(buf, child(buf, meta_p, meta_e + delta, "iloc")[1], delta, meta_e)
    open(dst, "wb").write(buf)


main()
