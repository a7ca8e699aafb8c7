"""A fake of the Xet CAS (content-addressed storage) and of the Hub route that hands out its write
token, for offline tests of Xet uploads (stdlib only, 127.0.0.1).

It speaks what hf_xet 1.8.0 calls while huggingface_hub 2.4 uploads files (checked against the
installed hf_xet; protocol: https://huggingface.co/docs/xet/api, upload-protocol, xorb, shard, auth):

Hub (``XetHub``, a tests/fake_hub.py ``FakeHub`` with one more route):
    GET  /api/models/{ns}/{name}/xet-write-token/{rev}   needs the Hub token with write access:
                                                         JSON {accessToken, exp, casUrl} (+ X-Xet-* headers)
CAS (``FakeCas.url``), every request needs ``Authorization: Bearer {access_token}`` (else 401):
    GET  /v1/chunks/{prefix}/{hash}                      global dedup query: always 404 (nothing known)
    POST /v1/xorb-grants/{prefix}/{hash}                 404: no upload grants, so the client falls back to...
    POST /v1/xorbs/{prefix}/{hash}                       a serialized xorb: chunk headers checked, LZ4 / BG4-LZ4
                                                         chunks decompressed and kept; {"was_inserted": true}
    POST /v2/shards                                      404: the client falls back to...
    POST /v1/shards                                      a shard: every file is rebuilt from the kept chunks and
                                                         checked against its size and sha256; {"result": 1}
    POST /v1/telemetry                                   upload summary (only when telemetry is on): 200
A shard that checks out makes the file known to the Hub by its sha256 (``hub.lfs``), as the real CAS
does, so the following commit may reference it as an lfsFile; its content never reaches the CDN.
Not checked: the xorb and chunk hashes themselves (they need BLAKE3, not in the stdlib).

Test switches: ``FakeCas.fail`` (answer every CAS request with that status, e.g. 500), ``XetHub.cas_address``
(hand out another CAS address, e.g. a closed port). Records: ``FakeCas.requests`` (method, path, body
size, headers), ``xorbs`` (hash -> chunks), ``shards`` (parsed), ``files`` (sha256 -> rebuilt content).
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from fake_hub import FakeHub, HttpError, Request
from fake_hub_routes import REPO, Handler

SHARD_TAG = b"HFRepoMetaData\x00"  # first bytes of MDB_SHARD_HEADER_TAG
BOOKEND = b"\xff" * 32
WITH_VERIFICATION, WITH_METADATA_EXT = 1 << 31, 1 << 30
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


@dataclass(frozen=True)
class CasRequest:
    method: str
    path: str
    size: int  # bytes of the request body
    authorization: str | None
    headers: dict[str, str]  # all of them, as sent


@dataclass(frozen=True)
class ShardFile:
    sha256: str
    size: int  # sum of the unpacked bytes of its segments


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


def xorb_chunks(body: bytes) -> list[bytes]:
    """The uncompressed chunks of a serialized xorb: per chunk an 8-byte header (version 0, 3-byte
    compressed size, scheme 0 none / 1 LZ4 / 2 byte-grouping-4 + LZ4, 3-byte size), then its data."""
    chunks, i = [], 0
    while i < len(body):
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
    return chunks


def parse_shard(body: bytes) -> tuple[list[tuple[str, list[tuple[str, int, int, int]]]], dict[str, int]]:
    """(files, xorbs) of an uploaded shard: per file its sha256 (metadata extension) and segments
    (xorb hash, unpacked bytes, chunk start, chunk end); per new xorb its number of chunks."""
    if not body.startswith(SHARD_TAG) or struct.unpack_from("<Q", body, 32)[0] != 2:
        raise ValueError("not a version 2 shard")
    files, xorbs, i = [], {}, 48
    while body[i : i + 32] != BOOKEND:
        flags, entries = struct.unpack_from("<II", body, i + 32)
        segments = [(hash_hex(body[j : j + 32]), *struct.unpack_from("<III", body, j + 36))
                    for j in range(i + 48, i + 48 + 48 * entries, 48)]  # fmt: skip
        i += 48 * (1 + entries + (entries if flags & WITH_VERIFICATION else 0))
        if not flags & WITH_METADATA_EXT:
            raise ValueError("a file without its sha256 (metadata extension)")
        files.append((hash_hex(body[i : i + 32]), segments))
        i += 48
    i += 48
    while i < len(body) and body[i : i + 32] != BOOKEND:
        entries = struct.unpack_from("<I", body, i + 36)[0]
        xorbs[hash_hex(body[i : i + 32])] = entries
        i += 48 * (1 + entries)
    return files, xorbs


# -- servers ------------------------------------------------------------------------------------


class FakeCas:
    def __init__(self, access_token: str = "xet_fake_write_token"):
        self.access_token = access_token
        self.fail: int | None = None  # e.g. 500: every request answers this status
        self.requests: list[CasRequest] = []
        self.xorbs: dict[str, list[bytes]] = {}  # xorb hash -> uncompressed chunks
        self.shards: list[list[ShardFile]] = []
        self.files: dict[str, bytes] = {}  # sha256 -> content rebuilt from the xorbs
        self.on_file = lambda sha256, data: None  # called for every file of an accepted shard
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> FakeCas:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), CasHandler)
        self._server.daemon_threads = True
        self._server.cas = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def paths(self, prefix: str) -> list[str]:
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def store_shard(self, body: bytes) -> None:
        files, new_xorbs = parse_shard(body)
        for xorb, chunks in new_xorbs.items():
            if len(self.xorbs.get(xorb, ())) != chunks:
                raise HttpError(400, f"shard lists xorb {xorb} with {chunks} chunks; not uploaded as such")
        accepted: dict[str, bytes] = {}
        for sha256, segments in files:
            data = b""
            for xorb, size, start, end in segments:
                chunks = self.xorbs.get(xorb, [])
                if end > len(chunks) or len(part := b"".join(chunks[start:end])) != size:
                    raise HttpError(400, f"segment {xorb}[{start}:{end}] of {sha256} is not in the CAS")
                data += part
            if hashlib.sha256(data).hexdigest() != sha256:
                raise HttpError(400, f"file {sha256} rebuilt from its xorbs has another sha256")
            accepted[sha256] = data
        self.shards.append([ShardFile(sha256, len(data)) for sha256, data in accepted.items()])
        for sha256, data in accepted.items():
            self.files[sha256] = data
            self.on_file(sha256, data)


class CasHandler(Handler):
    """The CAS routes; the plumbing (body, send_json, one request per connection) is the fake Hub's."""

    def dispatch(self) -> None:
        cas: FakeCas = self.server.cas  # type: ignore[attr-defined]
        body = self.body()
        request = CasRequest(self.command, self.path, len(body), self.headers.get("Authorization"), dict(self.headers))
        with cas.lock:
            cas.requests.append(request)
        route = f"{self.command} {self.path}"
        try:
            if cas.fail:
                raise HttpError(cas.fail, "CAS failure (test switch)")
            if self.headers.get("Authorization") != f"Bearer {cas.access_token}":
                raise HttpError(401, "missing or wrong xet access token")
            if re.fullmatch(r"GET /v1/chunks/[\w-]+/[0-9a-f]{64}", route):
                raise HttpError(404, "chunk not tracked by global deduplication")
            if match := re.fullmatch(r"POST /v1/xorbs/default/([0-9a-f]{64})", route):
                try:
                    chunks = xorb_chunks(body)
                except (ValueError, IndexError, struct.error) as e:
                    raise HttpError(400, f"bad xorb: {e}") from e
                with cas.lock:
                    inserted = cas.xorbs.setdefault(match[1], chunks) is chunks
                return self.send_json({"was_inserted": inserted})
            if route == "POST /v1/shards":
                with cas.lock:
                    try:
                        cas.store_shard(body)
                    except (ValueError, IndexError, struct.error) as e:
                        raise HttpError(400, f"bad shard: {e}") from e
                return self.send_json({"result": 1})
            if route == "POST /v1/telemetry":
                return self.send_json({})
            raise HttpError(404, f"no route for {route}")  # /v1/xorb-grants, /v2/shards: fall back to v1
        except HttpError as e:
            self.send_json({"error": str(e)}, e.status)


class XetHubHandler(Handler):
    """The fake Hub's routes plus the Xet write-token route."""

    def dispatch(self) -> None:
        match = re.fullmatch(rf"/api/models{REPO}/xet-write-token/(?P<rev>[^/?]+)", self.path.split("?")[0])
        if self.server.role != "hub" or self.command != "GET" or not match:  # type: ignore[attr-defined]
            return super().dispatch()
        self.hub.requests.append(Request("hub", self.command, self.path, self.headers.get("Authorization")))
        try:
            if self.hub.outage:
                raise HttpError(self.hub.outage, "Service temporarily unavailable")
            with self.hub.lock:
                self.commit_at(self.repo(match["ns"], match["name"], write=True), match["rev"])
            hub: XetHub = self.hub  # type: ignore[assignment]
            token, exp, url = hub.cas.access_token, int(time.time()) + 3600, hub.cas_address or hub.cas.url
            headers = {"X-Xet-Cas-Url": url, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": exp}
            self.send_json({"accessToken": token, "exp": exp, "casUrl": url}, 200, headers)
        except HttpError as e:
            self.send_json({"error": str(e), **e.body}, e.status, e.headers)


class XetHub(FakeHub):
    """FakeHub + FakeCas: the write-token route hands out the CAS address (``cas_address`` when set,
    e.g. a closed port); every file of a shard the CAS accepts becomes known by its sha256."""

    def __init__(self, cas: FakeCas, **kwargs):
        super().__init__(**kwargs)
        self.cas, self.cas_address = cas, None
        cas.on_file = self.register

    def register(self, sha256: str, data: bytes) -> None:
        with self.lock:
            self.lfs[sha256] = data

    def start(self) -> XetHub:
        super().start()
        for server in self._servers:  # nothing was served yet: swap in the handler with the token route
            server.RequestHandlerClass = XetHubHandler
        return self
