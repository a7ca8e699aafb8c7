"""A small in-memory fake of the Hugging Face Hub's HTTP API on 127.0.0.1 (stdlib only).

It answers what huggingface_hub 2.4 sends for one round trip and nothing more: create_repo and
upload_folder over plain LFS (HF_HUB_DISABLE_XET=1: no Xet storage here), then model_info and
snapshot_download. One branch (main), no access control: the token is only checked to be sent to
the Hub's own routes. Failures of the Hub are tested by replacing huggingface_hub's functions at
our boundary instead (tests/hub_support.py).

    POST /api/repos/create                          409 when it exists (create_repo(exist_ok=True) accepts that)
    GET  /api/models/{repo}[/revision/{rev}]        model info: "sha" and the file list
    GET  /api/models/{repo}/tree/{rev}              file listing with LFS info (snapshot_download)
    POST /api/validate-yaml                         README.md front matter check before a commit
    POST /api/models/{repo}/preupload/{rev}         upload mode per file: lfs for binary files
    POST /{repo}.git/info/lfs/objects/batch         LFS batch: an upload action per missing object
    PUT  /lfs/{sha256}                              the LFS object itself
    POST /api/models/{repo}/commit/{rev}            NDJSON commit: header, file (base64), lfsFile
    HEAD|GET /{repo}/resolve/{rev}/{path}           a file, with ETag and X-Repo-Commit
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

REPO = r"/(?P<repo>[^/]+/[^/]+)"
ROUTES = [  # (method, path regex, handler name)
    ("POST", r"/api/repos/create", "create_repo"),
    ("GET", rf"/api/models{REPO}(?:/revision/(?P<rev>[^/]+))?", "model_info"),
    ("GET", rf"/api/models{REPO}/tree/(?P<rev>[^/]+)", "tree"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", rf"/api/models{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", r"/lfs/(?P<oid>[0-9a-f]{64})", "lfs_upload"),
    ("POST", rf"/api/models{REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("HEAD", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("GET", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]
BINARY = (".safetensors", ".png", ".onnx")  # stored as LFS objects, like the .gitattributes of a new Hub repo


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit id -> {path: content}
    main: str = ""  # commit id of the branch

    def files(self, rev: str) -> dict[str, bytes] | None:
        return self.commits.get(self.main if rev == "main" else rev)


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


class FakeHub:
    def __init__(self, token: str = "hf_fake_0123456789SECRET"):
        self.token, self.repos, self.lfs = token, {}, {}  # lfs: sha256 -> content
        self.commit_payloads: list[list[dict]] = []  # every commit received, as parsed NDJSON lines
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization header)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Shut the server: its port refuses connections from now on."""
        self.server.shutdown()
        self.server.server_close()

    def env(self, hf_home) -> dict[str, str]:
        """Environment of a process that talks to this Hub over plain LFS, with its own cache."""
        return {"HF_ENDPOINT": self.url, "HF_HOME": str(hf_home), "HF_TOKEN": self.token, "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip

    def head(self, repo_id: str) -> tuple[str, dict[str, bytes]]:
        repo = self.repos[repo_id]
        return repo.main, repo.commits[repo.main]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a stopped server really is gone
    do_GET = do_HEAD = do_POST = do_PUT = lambda self: self.dispatch()

    def log_message(self, format, *args):  # keep pytest output quiet
        pass

    def dispatch(self) -> None:
        hub: FakeHub = self.server.hub  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        hub.requests.append((self.command, path, self.headers.get("Authorization")))
        try:
            for method, pattern, name in ROUTES:
                match = re.fullmatch(pattern, path)
                if match and method == self.command:
                    with hub.lock:
                        args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                        return getattr(self, name)(hub, **args)
            raise HttpError(404, f"no route for {self.command} {path}")
        except HttpError as e:
            self.send_json({"error": str(e)}, e.status, {"X-Error-Code": e.code} if e.code else {})

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return data

    def send(self, status: int, data: bytes, headers: dict) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": len(data)}.items():
            self.send_header(key, str(value))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self.send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def files(self, hub: FakeHub, repo: str, rev: str) -> tuple[str, dict[str, bytes]]:
        if repo not in hub.repos:
            raise HttpError(404, "Repository not found", "RepoNotFound")
        commit = hub.repos[repo].main if rev == "main" else rev
        if commit not in hub.repos[repo].commits:
            raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit, hub.repos[repo].commits[commit]

    # -- routes -------------------------------------------------------------------------------
    def create_repo(self, hub: FakeHub) -> None:
        payload = json.loads(self.body())
        repo_id = f"{payload.get('organization') or 'tester'}/{payload['name']}"
        if repo_id in hub.repos:
            raise HttpError(409, "You already created this model repo")
        hub.repos[repo_id] = Repo()
        self.send_json({"url": f"{hub.url}/{repo_id}"})

    def model_info(self, hub: FakeHub, repo: str, rev: str = "main") -> None:
        commit, files = self.files(hub, repo, rev)
        siblings = [{"rfilename": path} for path in sorted(files)]
        self.send_json({"id": repo, "sha": commit, "private": False, "siblings": siblings})

    def tree(self, hub: FakeHub, repo: str, rev: str) -> None:
        entries = []
        for path, data in sorted(self.files(hub, repo, rev)[1].items()):
            entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
            if path.endswith(BINARY):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 130}
            entries.append(entry)
        self.send_json(entries)

    def validate_yaml(self, hub: FakeHub) -> None:
        self.body()
        self.send_json({"errors": [], "warnings": []})

    def preupload(self, hub: FakeHub, repo: str, rev: str) -> None:
        modes = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(BINARY) else "regular",
                  "shouldIgnore": False} for f in json.loads(self.body())["files"]]  # fmt: skip
        self.send_json({"files": modes})

    def lfs_batch(self, hub: FakeHub, repo: str) -> None:
        objects = []
        for obj in json.loads(self.body())["objects"]:
            if obj["oid"] not in hub.lfs:
                obj["actions"] = {"upload": {"href": f"{hub.url}/lfs/{obj['oid']}"}}
            objects.append(obj)
        self.send_json({"transfer": "basic", "objects": objects})

    def lfs_upload(self, hub: FakeHub, oid: str) -> None:
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HttpError(400, "content does not match its sha256")
        hub.lfs[oid] = data
        self.send(200, b"", {})

    def commit(self, hub: FakeHub, repo: str, rev: str) -> None:
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        files = dict(self.files(hub, repo, rev)[1]) if hub.repos[repo].main else {}
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                files[value["path"]] = hub.lfs[value["oid"]]
        oid = hashlib.sha1(json.dumps([repo, len(hub.commit_payloads), sorted(files)]).encode()).hexdigest()
        hub.repos[repo].commits[oid], hub.repos[repo].main = files, oid
        hub.commit_payloads.append(lines)
        self.send_json({"success": True, "commitOid": oid, "commitUrl": f"{hub.url}/{repo}/commit/{oid}"})

    def resolve(self, hub: FakeHub, repo: str, rev: str, path: str) -> None:
        commit, files = self.files(hub, repo, rev)
        if path not in files:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound")
        data = files[path]
        etag = hashlib.sha256(data).hexdigest() if path.endswith(BINARY) else git_sha1(data)
        self.send(200, data, {"ETag": f'"{etag}"', "X-Repo-Commit": commit})
