"""The Xet storage formats the fake CAS of tests/fake_xet.py parses (stdlib only): hash strings,
LZ4 frames, serialized xorbs, version 2 shards (spec: https://huggingface.co/docs/xet/xorb, shard, api).
Not checked: the xorb and chunk hashes themselves (they need BLAKE3, not in the stdlib)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

SHARD_TAG = b"HFRepoMetaData\x00"  # first bytes of MDB_SHARD_HEADER_TAG
BOOKEND = b"\xff" * 32
WITH_VERIFICATION, WITH_METADATA_EXT = 1 << 31, 1 << 30
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


def hash_hex(raw: bytes) -> str:
    """A 32-byte Xet hash as a string: each 8-byte part is a little-endian u64 (spec: api.md)."""
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8)).hex()


# -- formats ------------------------------------------------------------------------------------


def lz4_block(src: bytes, out: bytearray) -> None:
    """Decode one LZ4 block onto `out` (earlier output serves as the dictionary of linked blocks)."""
    i = 0

    def length(n: int) -> int:  # a nibble of 15 goes on in the next bytes, while they are 255
        nonlocal i
        more = n == 15
        while more:
            n, i, more = n + src[i], i + 1, src[i] == 255
        return n

    while i < len(src):
        token = src[i]
        i += 1
        literals = length(token >> 4)
        out += src[i : i + literals]
        i += literals
        if i >= len(src):
            return
        offset = src[i] | src[i + 1] << 8
        i += 2
        start, count = len(out) - offset, length(token & 15) + 4
        if offset <= 0 or start < 0:
            raise ValueError("bad LZ4 match offset")
        for k in range(count):  # byte by byte: a match may overlap what it produces
            out.append(out[start + k])


def lz4_frame(data: bytes) -> bytes:
    """Decode an LZ4 frame (what xet-core's lz4_flex FrameEncoder writes)."""
    if data[:4] != LZ4_FRAME_MAGIC:
        raise ValueError("not an LZ4 frame")
    flags = data[4]
    i = 7 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)  # FLG, BD, [size], [dict id], HC
    out = bytearray()
    while (size := struct.unpack_from("<I", data, i)[0]) != 0:
        i += 4
        block = data[i : i + (size & 0x7FFFFFFF)]
        i += len(block) + (4 if flags & 0x10 else 0)  # block checksum
        if size & 0x80000000:
            out += block  # stored uncompressed
        else:
            lz4_block(block, out)
    return bytes(out)


@dataclass(frozen=True)
class Xorb:
    raw: bytes  # the serialized xorb, as uploaded: what its byte ranges are served from
    chunks: list[bytes]  # uncompressed
    offsets: list[int]  # where chunk k starts in `raw`; one more entry: len(raw)

    def byte_range(self, start: int, end: int) -> tuple[int, int]:
        """The bytes of `raw` (first, last: inclusive, as in a Range header) holding chunks [start, end)."""
        return self.offsets[start], self.offsets[end] - 1


def parse_xorb(body: bytes) -> Xorb:
    """A serialized xorb: per chunk an 8-byte header (version 0, 3-byte compressed size, scheme
    0 none / 1 LZ4 / 2 byte-grouping-4 + LZ4, 3-byte size), then its data."""
    chunks, offsets, i = [], [], 0
    while i < len(body):
        offsets.append(i)
        version, scheme = body[i], body[i + 4]
        stored, size = (int.from_bytes(body[j : j + 3], "little") for j in (i + 1, i + 5))
        data, i = body[i + 8 : i + 8 + stored], i + 8 + stored
        if version != 0 or len(data) != stored or scheme not in (0, 1, 2):
            raise ValueError(f"bad chunk header at chunk {len(chunks)}")
        raw = data if scheme == 0 else lz4_frame(data)
        if scheme == 2:  # bytes were grouped by position mod 4: interleave them back
            grouped, raw, start = raw, bytearray(len(raw)), 0
            for k in range(4):
                n = len(range(k, len(raw), 4))
                raw[k::4], start = grouped[start : start + n], start + n
        if len(raw) != size:
            raise ValueError(f"chunk {len(chunks)} is {len(raw)} bytes, its header says {size}")
        chunks.append(bytes(raw))
    return Xorb(body, chunks, [*offsets, len(body)])


Segment = tuple[str, int, int, int]  # xorb hash, unpacked bytes, chunk start, chunk end (exclusive)


def parse_shard(body: bytes) -> tuple[list[tuple[str, str, list[Segment]]], dict[str, int]]:
    """(files, xorbs) of an uploaded shard: per file its Xet hash (file info header), sha256
    (metadata extension) and segments; per new xorb its number of chunks."""
    if not body.startswith(SHARD_TAG) or struct.unpack_from("<Q", body, 32)[0] != 2:
        raise ValueError("not a version 2 shard")
    files, xorbs, i = [], {}, 48
    while body[i : i + 32] != BOOKEND:
        file_hash, (flags, entries) = hash_hex(body[i : i + 32]), struct.unpack_from("<II", body, i + 32)
        segments = [(hash_hex(body[j : j + 32]), *struct.unpack_from("<III", body, j + 36))
                    for j in range(i + 48, i + 48 + 48 * entries, 48)]  # fmt: skip
        i += 48 * (1 + entries + (entries if flags & WITH_VERIFICATION else 0))
        if not flags & WITH_METADATA_EXT:
            raise ValueError("a file without its sha256 (metadata extension)")
        files.append((file_hash, hash_hex(body[i : i + 32]), segments))
        i += 48
    i += 48
    while i < len(body) and body[i : i + 32] != BOOKEND:
        entries = struct.unpack_from("<I", body, i + 36)[0]
        xorbs[hash_hex(body[i : i + 32])] = entries
        i += 48 * (1 + entries)
    return files, xorbs
