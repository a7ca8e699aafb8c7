"""A fake of the Xet CAS (content-addressed storage) and of the Hub routes that hand out its tokens,
for offline tests of Xet uploads and downloads (stdlib only, 127.0.0.1).

It speaks what hf_xet 1.8.0 calls while huggingface_hub 2.4 uploads files (checked against the
installed hf_xet; protocol: https://huggingface.co/docs/xet/api, upload-protocol, xorb, shard, auth);
the download routes (resolve of a Xet file, read token, reconstructions, xorb ranges) are in
tests/fake_xet_read.py, the formats in tests/fake_xet_format.py.

Hub (``XetHub``, a tests/fake_hub.py ``FakeHub`` with more routes):
    GET  /api/models/{ns}/{name}/xet-write-token/{rev}   needs the Hub token with write access:
                                                         JSON {accessToken, exp, casUrl} (+ X-Xet-* headers)
CAS (``FakeCas.url``), every upload request needs ``Authorization: Bearer {access_token}`` (else 401;
a download request may carry the ``read_token`` instead):
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

Test switches: ``FakeCas.fail`` (answer every CAS request with that status, e.g. 500; only those whose
path matches the regex ``fail_match`` when set), ``XetHub.cas_address`` (hand out another CAS address,
e.g. a closed port). Records: ``FakeCas.requests`` (method, path, body size, headers), ``xorbs`` (hash ->
chunks), ``stored`` (hash -> Xorb: as uploaded), ``shards`` (parsed), ``files`` (sha256 -> rebuilt
content), ``xet_files`` (Xet file hash -> segments), ``xet_hash`` (sha256 -> Xet file hash).
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from urllib.parse import unquote

from fake_hub import FakeHub, HttpError, Request
from fake_hub_routes import REPO, Handler
from fake_xet_format import Segment, Xorb, parse_shard, parse_xorb
from fake_xet_read import XetReadRoutes, reconstruction, xorb_bytes


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
    xet_hash: str = ""  # the file's Xet hash (file info header of the shard)


# -- servers ------------------------------------------------------------------------------------


class FakeCas:
    def __init__(self, access_token: str = "xet_fake_write_token", read_token: str = "xet_fake_read_token"):
        self.access_token, self.read_token = access_token, read_token
        self.fail: int | None = None  # e.g. 500: every request (whose path matches fail_match) answers this
        self.fail_match = ""  # regex searched in the path; "" matches every request
        self.requests: list[CasRequest] = []
        self.xorbs: dict[str, list[bytes]] = {}  # xorb hash -> uncompressed chunks
        self.stored: dict[str, Xorb] = {}  # xorb hash -> as uploaded (served by byte ranges)
        self.shards: list[list[ShardFile]] = []
        self.files: dict[str, bytes] = {}  # sha256 -> content rebuilt from the xorbs
        self.xet_files: dict[str, list[Segment]] = {}  # Xet file hash -> its segments
        self.xet_hash: dict[str, str] = {}  # sha256 -> Xet file hash
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
        accepted: dict[str, tuple[bytes, str, list[Segment]]] = {}
        for file_hash, sha256, segments in files:
            data = b""
            for xorb, size, start, end in segments:
                chunks = self.xorbs.get(xorb, [])
                if end > len(chunks) or len(part := b"".join(chunks[start:end])) != size:
                    raise HttpError(400, f"segment {xorb}[{start}:{end}] of {sha256} is not in the CAS")
                data += part
            if hashlib.sha256(data).hexdigest() != sha256:
                raise HttpError(400, f"file {sha256} rebuilt from its xorbs has another sha256")
            accepted[sha256] = data, file_hash, segments
        self.shards.append([ShardFile(sha256, len(data), xet) for sha256, (data, xet, _) in accepted.items()])
        for sha256, (data, file_hash, segments) in accepted.items():
            self.files[sha256], self.xet_files[file_hash], self.xet_hash[sha256] = data, segments, file_hash
            self.on_file(sha256, data)


class CasHandler(Handler):
    """The CAS routes; the plumbing (body, send_json, one request per connection) is the fake Hub's."""

    def dispatch(self) -> None:
        cas: FakeCas = self.server.cas  # type: ignore[attr-defined]
        body = self.body()
        request = CasRequest(self.command, self.path, len(body), self.headers.get("Authorization"), dict(self.headers))
        with cas.lock:
            cas.requests.append(request)
        route = f"{self.command} {self.path.split('?')[0]}"
        try:
            if cas.fail and re.search(cas.fail_match, self.path):
                raise HttpError(cas.fail, "CAS failure (test switch)")
            if match := re.fullmatch(r"GET /xorb-data/default/([0-9a-f]{64})", route):  # presigned: no token
                with cas.lock:
                    status, data, headers = xorb_bytes(cas, match[1], self.headers.get("Range"))
                return self.send(status, data, {"Content-Type": "application/octet-stream", **headers})
            tokens = {cas.access_token} | ({cas.read_token} if self.command == "GET" else set())
            if self.headers.get("Authorization") not in {f"Bearer {token}" for token in tokens}:
                raise HttpError(401, "missing or wrong xet access token")
            if re.fullmatch(r"GET /v1/chunks/[\w-]+/[0-9a-f]{64}", route):
                raise HttpError(404, "chunk not tracked by global deduplication")
            if match := re.fullmatch(r"GET /v1/reconstructions/([0-9a-f]{64})", route):
                with cas.lock:
                    return self.send_json(reconstruction(cas, match[1], self.headers.get("Range")))
            if match := re.fullmatch(r"POST /v1/xorbs/default/([0-9a-f]{64})", route):
                try:
                    xorb = parse_xorb(body)
                except (ValueError, IndexError, struct.error) as e:
                    raise HttpError(400, f"bad xorb: {e}") from e
                with cas.lock:
                    inserted = cas.xorbs.setdefault(match[1], xorb.chunks) is xorb.chunks
                    cas.stored.setdefault(match[1], xorb)
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
            raise HttpError(404, f"no route for {route}")  # xorb-grants, v2 shards / reconstructions: fall back to v1
        except HttpError as e:
            self.send_json({"error": str(e)}, e.status)


XET_ROUTES = [  # (method, regex, XetReadRoutes method); "xet_resolve" only for files the CAS holds
    ("GET", rf"/api/models{REPO}/xet-write-token/(?P<rev>[^/]+)", "write_token"),
    ("GET", rf"/api/models{REPO}/xet-read-token/(?P<rev>[^/]+)", "read_token"),
    ("HEAD", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "xet_resolve"),
    ("GET", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "xet_resolve"),
]


class XetHubHandler(XetReadRoutes, Handler):
    """The fake Hub's routes plus the Xet token routes and the resolve of Xet files."""

    def dispatch(self) -> None:
        hub, path = self.hub, self.path.split("?")[0]
        route = next(((name, match) for method, pattern, name in XET_ROUTES
                      if method == self.command and (match := re.fullmatch(pattern, path))), None)  # fmt: skip
        args = {k: unquote(v) for k, v in route[1].groupdict().items()} if route else {}
        with hub.lock:
            xet = route is not None and (route[0] != "xet_resolve" or self.xet_file(**args) is not None)
        stalled = hub.stall and re.search(hub.stall, path)
        if self.server.role != "hub" or not xet or stalled:  # type: ignore[attr-defined]
            return super().dispatch()
        hub.requests.append(Request("hub", self.command, path, self.headers.get("Authorization")))
        try:
            if hub.outage:
                raise HttpError(hub.outage, "Service temporarily unavailable")
            with hub.lock:
                getattr(self, route[0])(**args)
        except HttpError as e:
            self.send_json({"error": str(e), **e.body}, e.status, e.headers)


class XetHub(FakeHub):
    """FakeHub + FakeCas: the token routes hand out the CAS address (``cas_address`` when set, e.g. a
    closed port); every file of a shard the CAS accepts becomes known by its sha256, and is then
    resolved as a Xet file (download through the CAS)."""

    def __init__(self, cas: FakeCas, **kwargs):
        super().__init__(**kwargs)
        self.cas, self.cas_address = cas, None
        cas.on_file = self.register

    def register(self, sha256: str, data: bytes) -> None:
        with self.lock:
            self.lfs[sha256] = data

    def start(self) -> XetHub:
        super().start()
        for server in self._servers:  # nothing was served yet: swap in the handler with the Xet routes
            server.RequestHandlerClass = XetHubHandler
        return self
