"""The request handler of tests/fake_hub.py: one method per Hub or CDN route (see its docstring)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from fake_hub import Blob, Commit, FakeHub, HttpError, Repo, Request, git_sha1

INVALID_TOKEN = "Invalid credentials in Authorization header"
REPO = r"/(?P<ns>[^/]+)/(?P<name>[^/]+)"
ROUTES = [  # (method, role, regex, handler name); {REPO} captures ns/name, other groups are url-quoted
    ("POST", "hub", r"/api/repos/create", "create_repo"),
    ("POST", "hub", r"/api/validate-yaml", "validate_yaml"),
    ("GET", "hub", rf"/api/models{REPO}(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
    ("GET", "hub", rf"/api/models{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
    ("POST", "hub", rf"/api/models{REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", "hub", rf"{REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("POST", "hub", rf"/api/models{REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("HEAD", "hub", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("GET", "hub", rf"{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("PUT", "cdn", r"/upload/(?P<oid>[0-9a-f]{64})", "cdn_upload"),
    ("HEAD", "cdn", r"/blobs/(?P<oid>[0-9a-f]{64})", "cdn_blob"),
    ("GET", "cdn", r"/blobs/(?P<oid>[0-9a-f]{64})", "cdn_blob"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a stopped server really is gone

    def log_message(self, format, *args):  # keep pytest output quiet
        pass

    do_GET = do_HEAD = do_POST = do_PUT = lambda self: self.dispatch()

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def dispatch(self) -> None:
        role, parts = self.server.role, urlsplit(self.path)  # type: ignore[attr-defined]
        self.query = parse_qs(parts.query)
        self.hub.requests.append(Request(role, self.command, parts.path, self.headers.get("Authorization")))
        try:
            if role == "hub" and self.hub.outage:
                raise HttpError(self.hub.outage, "Service temporarily unavailable")
            if role == "hub" and self.hub.stall and re.search(self.hub.stall, parts.path):
                self.hub.released.wait(120)
                raise HttpError(404, "stalled request released", {}, **{"X-Error-Code": "EntryNotFound"})
            for method, route_role, pattern, name in ROUTES:
                match = re.fullmatch(pattern, parts.path)
                if match and method == self.command and route_role == role:
                    args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    with self.hub.lock:
                        return getattr(self, name)(**args)
            raise HttpError(404, f"no route for {self.command} {parts.path}")
        except HttpError as e:
            self.send_json({"error": str(e), **e.body}, e.status, e.headers)

    # -- plumbing ------------------------------------------------------------------------------
    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, data: bytes = b"", headers: dict | None = None, length: int | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self.send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def auth(self, write: bool = False) -> bool:
        """True for the right bearer token; raises 401 for a wrong one, or when a write is anonymous."""
        header = self.headers.get("Authorization")
        if header is not None and header != f"Bearer {self.hub.token}":
            raise HttpError(401, INVALID_TOKEN, **{"X-Error-Message": INVALID_TOKEN})
        if header is None and (write or self.hub.require_token):
            raise HttpError(401, "You must be authenticated to write", **{"X-Error-Message": "Unauthorized"})
        return header is not None

    def repo(self, ns: str, name: str, write: bool = False) -> Repo:
        authorized = self.auth(write)
        repo = self.hub.repos.get(f"{ns}/{name}")
        if repo is None or (repo.private and not authorized):
            raise HttpError(404, "Repository not found", **{"X-Error-Code": "RepoNotFound"})
        return repo

    def commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HttpError(404, f"Invalid rev id: {rev}", **{"X-Error-Code": "RevisionNotFound"})
        return commit

    # -- hub endpoints ---------------------------------------------------------------------------
    def create_repo(self) -> None:
        self.auth(write=True)
        payload = json.loads(self.body())
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        if repo_id in self.hub.repos:
            raise HttpError(409, "You already created this model repo", {"url": f"{self.hub.url}/{repo_id}"})
        if not repo_id.startswith(f"{self.hub.user}/"):
            raise HttpError(403, "You don't have the rights to create a model under this namespace")
        self.hub.create(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self.send_json({"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": git_sha1(repo_id.encode())})

    def validate_yaml(self) -> None:
        self.auth()
        self.body()
        self.send_json({"errors": [], "warnings": []})

    def repo_info(self, ns: str, name: str, rev: str = "main") -> None:
        repo = self.repo(ns, name)
        commit = self.commit_at(repo, rev)
        siblings = [{"rfilename": p} for p in sorted(self.hub.visible(commit))]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.send_json({"id": repo.repo_id, "sha": commit.oid, "private": repo.private, "siblings": siblings,
                        "lastModified": now, "tags": [], "downloads": 0, "likes": 0})  # fmt: skip

    def tree(self, ns: str, name: str, rev: str, path: str = "") -> None:
        commit = self.commit_at(self.repo(ns, name), rev)
        recursive = self.query.get("recursive", ["False"])[0].lower() == "true"
        prefix = f"{path.strip('/')}/" if path else ""
        entries, folders = [], set()
        for file, blob in sorted(self.hub.visible(commit).items()):
            if not file.startswith(prefix):
                continue
            rest = file[len(prefix) :].split("/")
            for depth in range(1, len(rest) if recursive else min(2, len(rest))):
                folders.add(prefix + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                entries.append(blob.tree_entry(file))
        dirs = [{"type": "directory", "path": d, "oid": git_sha1(d.encode()), "size": 0} for d in sorted(folders)]
        self.send_json(dirs + entries)

    def preupload(self, ns: str, name: str, rev: str) -> None:
        repo = self.repo(ns, name, write=True)
        existing = self.commit_at(repo, rev).files
        files = []
        for f in json.loads(self.body())["files"]:
            lfs = f["path"].endswith((".safetensors", ".png")) or b"\0" in base64.b64decode(f["sample"])
            old = existing.get(f["path"])
            oid = None if old is None else old.sha256 if old.lfs else old.oid
            files.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self.send_json({"files": files, "commitOid": repo.branches.get(rev)})

    def lfs_batch(self, ns: str, name: str) -> None:
        self.repo(ns, name, write=True)
        objects = []
        for obj in json.loads(self.body())["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.cdn_url}/upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self.send_json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def commit(self, ns: str, name: str, rev: str) -> None:
        repo = self.repo(ns, name, write=True)
        if rev not in repo.branches:
            raise HttpError(404, f"Invalid rev id: {rev}", **{"X-Error-Code": "RevisionNotFound"})
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, repo.branches[rev]):
            raise HttpError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(repo.commits[repo.branches[rev]].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    raise HttpError(422, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = Blob(self.hub.lfs[value["oid"]], lfs=True)
            elif key in ("deletedFile", "deletedFolder"):
                files = {p: b for p, b in files.items() if p != value["path"] and not p.startswith(value["path"] + "/")}
        self.hub.commit_requests.append({"repo": repo.repo_id, "header": header, "operations": lines[1:]})
        commit = self.hub.add_commit(repo, rev, header["summary"], files)
        url = f"{self.hub.url}/{repo.repo_id}/commit/{commit.oid}"
        self.send_json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""})

    def resolve(self, ns: str, name: str, rev: str, path: str) -> None:
        repo = self.repo(ns, name)
        commit = self.commit_at(repo, rev)
        blob = self.hub.visible(commit).get(path)
        if blob is None:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit.oid}
            raise HttpError(404, f"Entry not found: {path}", **headers)
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers |= {"Location": f"{self.hub.cdn_url}/blobs/{blob.sha256}", "ETag": f'"{blob.oid}"',
                        "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": len(blob.data)}  # fmt: skip
            return self.send(302, b"", headers)
        self.send(200, self.hub.served(blob), {**headers, "ETag": f'"{blob.oid}"'})

    # -- CDN endpoints -------------------------------------------------------------------------
    def cdn_upload(self, oid: str) -> None:
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HttpError(400, "content does not match its sha256")
        self.hub.lfs[oid] = data
        self.send(200, b"", {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    def cdn_blob(self, oid: str) -> None:
        if oid not in self.hub.lfs:
            raise HttpError(404, "NoSuchKey")
        data = self.hub.served(Blob(self.hub.lfs[oid], lfs=True))
        self.send(200, data, {"Content-Type": "application/octet-stream", "ETag": f'"{oid}"'})
