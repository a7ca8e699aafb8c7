"""The download side of the fake Xet storage of tests/fake_xet.py: what huggingface_hub 2.4 and hf_xet
1.8.0 call to download a file stored through Xet (checked against the installed versions; protocol:
https://huggingface.co/docs/xet/download-protocol, api, file-id, auth).

Hub (``XetReadRoutes``, mixed into the fake Hub's handler):
    HEAD|GET /{ns}/{name}/resolve/{rev}/{path}       a file the CAS rebuilt from a shard: 302 to the CDN (the
                                                     LFS-compatible bridge, which the client must NOT use),
                                                     ETag / X-Linked-Etag (sha256) / X-Linked-Size / X-Repo-Commit
                                                     plus X-Xet-Hash and the read-token route (Link rel="xet-auth"
                                                     and X-Xet-Refresh-Route); other files: the fake Hub's answer
    GET  /api/models/{ns}/{name}/xet-read-token/{rev}  read access to the repo: JSON {accessToken, exp, casUrl}
                                                     + X-Xet-Cas-Url / X-Xet-Access-Token / X-Xet-Token-Expiration
CAS (functions the CAS handler calls):
    GET  /v1/reconstructions/{file_hash}             Bearer read (or write) token; optional ``Range: bytes=a-b`` of
                                                     the file: {offset_into_first_range, terms: [{hash,
                                                     unpacked_length, range}], fetch_info: {xorb: [{range, url,
                                                     url_range}]}} (url_range inclusive); 416 past the end
    GET  /v2/reconstructions/{file_hash}             404: the client falls back to v1
    GET  /xorb-data/default/{xorb_hash}              a "presigned" URL (no token needed): the serialized xorb as
                                                     uploaded; ``Range: bytes=a-b`` gives 206 + Content-Range
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from fake_hub import HttpError

if TYPE_CHECKING:
    from fake_xet import FakeCas

BYTES = re.compile(r"bytes=(\d+)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a ``Range: bytes=a-b`` header, last clipped to the size; None without one."""
    if header is None:
        return None
    match = BYTES.fullmatch(header.strip())
    if not match:
        raise HttpError(400, f"unsupported Range header {header!r}")
    first, last = int(match[1]), min(int(match[2] or size - 1), size - 1)
    if first >= size or last < first:
        raise HttpError(416, f"range {header} is outside the {size} bytes")
    return first, last


def reconstruction(cas: FakeCas, file_hash: str, range_header: str | None) -> dict:
    """The v1 reconstruction of a file: its segments (from the shard) overlapping the asked range,
    with the xorb byte range that holds each segment's chunks."""
    segments = cas.xet_files.get(file_hash)
    if segments is None:
        raise HttpError(404, f"file {file_hash} is not known to the CAS")
    first, last = parse_range(range_header, sum(length for _, length, _, _ in segments)) or (0, None)
    terms, fetch_info, offset, position = [], {}, None, 0
    for xorb, length, start, end in segments:
        if position + length > first and (last is None or position <= last):
            offset = first - position if offset is None else offset
            terms.append({"hash": xorb, "unpacked_length": length, "range": {"start": start, "end": end}})
            url_first, url_last = cas.stored[xorb].byte_range(start, end)
            fetch = {"range": {"start": start, "end": end}, "url": f"{cas.url}/xorb-data/default/{xorb}",
                     "url_range": {"start": url_first, "end": url_last}}  # fmt: skip
            if fetch not in fetch_info.setdefault(xorb, []):
                fetch_info[xorb].append(fetch)
        position += length
    return {"offset_into_first_range": offset or 0, "terms": terms, "fetch_info": fetch_info}


def xorb_bytes(cas: FakeCas, xorb: str, range_header: str | None) -> tuple[int, bytes, dict]:
    """(status, body, headers) of a GET on a xorb's URL: all of it, or the asked byte range."""
    stored = cas.stored.get(xorb)
    if stored is None:
        raise HttpError(404, "NoSuchKey")
    span = parse_range(range_header, len(stored.raw))
    if span is None:
        return 200, stored.raw, {}
    first, last = span
    return 206, stored.raw[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{len(stored.raw)}"}


class XetReadRoutes:
    """Handler methods of the Hub side (called with the Hub's lock held, see XetHubHandler)."""

    def xet_file(self, ns: str, name: str, rev: str, path: str):
        """The Blob at path if the CAS holds it (rebuilt from an accepted shard), else None; no side effect."""
        repo = self.hub.repos.get(f"{ns}/{name}")
        commit = repo and repo.resolve(rev)
        blob = commit and self.hub.visible(commit).get(path)
        return blob if blob and blob.lfs and blob.sha256 in self.hub.cas.xet_hash else None

    def token_url(self, ns: str, name: str, commit: str) -> str:
        return f"{self.hub.url}/api/models/{ns}/{name}/xet-read-token/{commit}"

    def xet_resolve(self, ns: str, name: str, rev: str, path: str) -> None:
        commit = self.commit_at(self.repo(ns, name), rev)
        blob = self.hub.visible(commit)[path]
        cas, file_hash, refresh = self.hub.cas, self.hub.cas.xet_hash[blob.sha256], self.token_url(ns, name, commit.oid)
        links = (
            f'<{refresh}>; rel="xet-auth", <{cas.url}/v1/reconstructions/{file_hash}>; rel="xet-reconstruction-info"'
        )
        headers = {
            "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes",
            "Location": f"{self.hub.cdn_url}/blobs/{blob.sha256}",
            "ETag": f'"{blob.oid}"', "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": len(blob.data),
            "X-Xet-Hash": file_hash, "X-Xet-Refresh-Route": refresh, "Link": links,
        }  # fmt: skip
        self.send(302, b"", headers)

    def xet_token(self, ns: str, name: str, rev: str, token: str, write: bool) -> None:
        self.commit_at(self.repo(ns, name, write=write), rev)
        hub = self.hub
        exp, url = int(time.time()) + 3600, hub.cas_address or hub.cas.url
        headers = {"X-Xet-Cas-Url": url, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": exp}
        self.send_json({"accessToken": token, "exp": exp, "casUrl": url}, 200, headers)

    def read_token(self, ns: str, name: str, rev: str) -> None:
        self.xet_token(ns, name, rev, self.hub.cas.read_token, write=False)

    def write_token(self, ns: str, name: str, rev: str) -> None:
        self.xet_token(ns, name, rev, self.hub.cas.access_token, write=True)
