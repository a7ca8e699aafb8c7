"""An in-memory fake of the Hugging Face Hub HTTP API, for offline tests (stdlib only).

It speaks exactly what huggingface_hub 2.4 calls to create a repo, commit files and download them,
on two loopback servers: the Hub itself and a "CDN" (another port, so another origin) that stores
LFS uploads and serves LFS downloads, like S3/CloudFront behind the real Hub.

Hub (``FakeHub.url``):
    POST /api/repos/create                                 create-repo (409: exists, visibility left as it is,
                                                           like the real Hub; 403: not the user's namespace)
    POST /api/validate-yaml                                README.md metadata check before a commit
    GET  /api/models/{ns}/{name}[/revision/{rev}]          repo / model info ("sha" = resolved commit, "private")
    GET  /api/models/{ns}/{name}/tree/{rev}[/{path}]       file listing (``?recursive=``), LFS info included
    POST /api/models/{ns}/{name}/preupload/{rev}           upload mode per file: "lfs" (binary) or "regular"
    POST /{ns}/{name}.git/info/lfs/objects/batch           LFS batch: upload actions pointing at the CDN
    POST /api/models/{ns}/{name}/commit/{rev}              NDJSON commit: header, file (base64), lfsFile, deleted*
    HEAD|GET /{ns}/{name}/resolve/{rev}/{path}             regular file: 200 + ETag + X-Repo-Commit;
                                                           LFS file: 302 to the CDN + X-Linked-Etag/-Size
CDN (``FakeHub.cdn_url``):
    PUT  /upload/{sha256}                                  basic LFS transfer (content checked against its sha256)
    HEAD|GET /blobs/{sha256}                               LFS content (must arrive without Authorization)

Errors carry the headers the client maps to exceptions: X-Error-Code RepoNotFound / RevisionNotFound /
EntryNotFound, X-Error-Message "Invalid credentials in Authorization header" for a wrong token.
Uploading LFS files needs the classic LFS path: set HF_HUB_DISABLE_XET=1 (xet would talk to a CAS).

Test switches: ``token`` (the only bearer accepted; a wrong one gets 401), ``require_token`` (anonymous
requests get 401 as well, not only anonymous writes), ``corrupt_file`` (serve
garbled bytes of the same length), ``hide_file`` (drop a path from listings and downloads), ``outage``
(answer every Hub request with that status, e.g. 503), ``stall`` (Hub requests whose path matches
this regex hang until ``stop()``), ``create(repo_id, private=...)`` / ``repos[id].private``
(a repo that already exists, public or private), plus
``requests`` (everything received) and ``commit_requests`` for assertions.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:  # git blob id: of the pointer file for LFS files
        return git_sha1(self.pointer if self.lfs else self.data)

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "path": path, "size": len(self.data), "oid": self.oid}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return entry


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        oid = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(oid)


class HttpError(Exception):
    def __init__(self, status: int, message: str, body: dict | None = None, **headers: str):
        super().__init__(message)
        self.status, self.body, self.headers = status, body or {}, headers


@dataclass
class Request:
    role: str  # "hub" or "cdn"
    method: str
    path: str
    authorization: str | None


class FakeHub:
    def __init__(self, user: str = "tester", token: str = "hf_fake_0123456789abcdefSECRET"):
        self.user, self.token = user, token
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content uploaded to the CDN
        self.corrupt: set[str] = set()  # sha256 of contents served garbled
        self.hidden: set[str] = set()  # paths missing from every listing and download
        self.require_token = False  # True: anonymous requests get 401 too, not only writes
        self.outage: int | None = None  # e.g. 503: every Hub (not CDN) request answers this status
        self.stall: str | None = None  # regex: matching Hub requests hang until stop(), then get a 404
        self.released = threading.Event()  # set by stop(): stalled requests end
        self.requests: list[Request] = []
        self.commit_requests: list[dict] = []  # parsed NDJSON payloads
        self.lock = threading.RLock()
        self._servers: list[ThreadingHTTPServer] = []
        self.url = self.cdn_url = ""  # set by start()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeHub:
        from fake_hub_routes import Handler  # the routes module imports this one

        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            server.hub, server.role = self, role  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self._servers.append(server)
        self.url, self.cdn_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)
        return self

    def stop(self) -> None:
        """Shut both servers; their ports are closed afterwards (url/cdn_url stay readable)."""
        self.released.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def env(self, hf_home) -> dict[str, str]:
        """Environment for a subprocess that talks to this Hub (HF_ENDPOINT is read at import)."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(hf_home),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_TOKEN": self.token,
        }

    # -- test helpers ----------------------------------------------------------------------------
    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        commit = self.repos[repo_id].resolve(rev)
        return {path: blob.data for path, blob in commit.files.items()}

    def head(self, repo_id: str, branch: str = "main") -> Commit:
        repo = self.repos[repo_id]
        return repo.commits[repo.branches[branch]]

    def corrupt_file(self, repo_id: str, path: str, rev: str = "main") -> None:
        self.corrupt.add(self.repos[repo_id].resolve(rev).files[path].sha256)

    def hide_file(self, path: str) -> None:
        self.hidden.add(path)

    def create(self, repo_id: str, private: bool = False) -> Repo:
        repo = self.repos[repo_id] = Repo(repo_id, private)
        self.add_commit(repo, "main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES, lfs=False)})
        return repo

    def add_commit(self, repo: Repo, branch: str, message: str, files: dict[str, Blob]) -> Commit:
        parent = repo.branches.get(branch)
        listing = json.dumps({p: b.oid for p, b in sorted(files.items())})
        seed = f"{repo.repo_id}\n{parent}\n{message}\n{len(repo.commits)}\n{listing}".encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), parent, message, files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def visible(self, commit: Commit) -> dict[str, Blob]:
        return {p: b for p, b in commit.files.items() if p not in self.hidden}

    def served(self, blob: Blob) -> bytes:
        if blob.sha256 not in self.corrupt:
            return blob.data
        return b"\xff" * min(8, len(blob.data)) + blob.data[8:]  # safetensors: absurd header length
