"""A loopback fake of the Hugging Face Hub's HTTP API, enough for `push_to_hub` and downloading it back.

Started by a test on 127.0.0.1 (a free port), in a thread; `FakeHub.patch(monkeypatch, cache_dir)` points
huggingface_hub at it (its constants are read when it is imported, so they are patched, not HF_ENDPOINT).
It speaks what huggingface_hub's `HfApi` sends:

    POST /api/repos/create                          {"name", "organization", "visibility"} -> {"url"} (409 if it exists)
    POST /api/models/{repo}/branch/{branch}         a branch from main (409 if it exists)
    POST /api/models/{repo}/preupload/{revision}    every file "regular" (its content inline in the commit)
    POST /api/models/{repo}/commit/{revision}       the ndjson commit: a header line, one line per file
    HEAD|GET /{repo}/resolve/{revision}/{path}      a file, with X-Repo-Commit, ETag and Content-Length

`fail_commits = n` makes the next n commits fail with a 500 (nothing stored), as a flaky Hub would.
Each commit is recorded in `commits` (repo, revision, message, description, files, authorization, create_pr).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_NAMESPACE = "tester"  # where a bare repo name goes (the token's user on the real Hub)


@dataclass
class Repo:
    private: bool
    branches: Dict[str, Dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    heads: Dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})


class FakeHub:
    def __init__(self) -> None:
        self.repos: Dict[str, Repo] = {}
        self.commits: List[dict] = []
        self.fail_commits = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def patch(self, monkeypatch, cache_dir) -> None:
        """Point huggingface_hub at this server, with its own cache and no saved token."""
        import huggingface_hub.constants as constants

        monkeypatch.setattr(constants, "ENDPOINT", self.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True, raising=False)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")

    def files(self, repo_id: str, revision: str = "main") -> Dict[str, bytes]:
        return dict(self.repos[repo_id].branches[revision])

    # --- requests -------------------------------------------------------------------------------------
    def create_repo(self, body: dict):
        repo_id = f"{body.get('organization') or DEFAULT_NAMESPACE}/{body['name']}"
        url = {"url": f"{self.endpoint}/{repo_id}"}
        with self.lock:
            if repo_id in self.repos:
                return 409, {**url, "error": "You already created this model repo"}, {}
            self.repos[repo_id] = Repo(private=body.get("visibility") == "private" or bool(body.get("private")))
        return 200, url, {}

    def create_branch(self, repo_id: str, branch: str):
        repo = self.repos[repo_id]
        with self.lock:
            if branch in repo.branches:
                return 409, {"error": "Reference already exists"}, {}
            repo.branches[branch] = dict(repo.branches["main"])
            repo.heads[branch] = repo.heads["main"]
        return 200, {}, {}

    def preupload(self, body: dict):
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                               for f in body["files"]]}, {}

    def commit(self, repo_id: str, revision: str, lines: List[dict], query: dict, authorization: Optional[str]):
        with self.lock:
            if self.fail_commits > 0:
                self.fail_commits -= 1
                return 500, {"error": "Internal Error - simulated failure of the upload"}, {}
            repo = self.repos[repo_id]
            create_pr = query.get("create_pr") == ["1"]
            if create_pr:
                number = sum(b.startswith("refs/pr/") for b in repo.branches) + 1
                target = f"refs/pr/{number}"
                repo.branches[target] = dict(repo.branches.get(revision, {}))
            else:
                target = revision
                if target not in repo.branches:
                    return 404, {"error": f"Invalid rev id: {revision}"}, {"X-Error-Code": "RevisionNotFound"}
            header = next(line["value"] for line in lines if line["key"] == "header")
            files = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                     for line in lines if line["key"] == "file"}
            repo.branches[target].update(files)
            oid = hashlib.sha1(f"{repo_id}{len(self.commits)}{sorted(files)}".encode()).hexdigest()
            repo.heads[target] = oid
            self.commits.append({"repo": repo_id, "revision": target, "message": header["summary"],
                                 "description": header.get("description", ""), "files": sorted(files),
                                 "authorization": authorization, "create_pr": create_pr})
        pr_url = f"{self.endpoint}/{repo_id}/discussions/{target.rsplit('/', 1)[-1]}" if create_pr else None
        return 200, {"commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}", "commitOid": oid,
                     "pullRequestUrl": pr_url}, {}

    def resolve(self, repo_id: str, revision: str, path: str):
        repo = self.repos.get(repo_id)
        if repo is None:
            return 404, b"Repository not found", {"X-Error-Code": "RepoNotFound"}
        if revision not in repo.branches:
            return 404, b"Invalid rev id", {"X-Error-Code": "RevisionNotFound"}
        content = repo.branches[revision].get(path)
        if content is None:
            return 404, b"Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.heads[revision]}
        etag = hashlib.sha1(content).hexdigest()
        return 200, content, {"X-Repo-Commit": repo.heads[revision], "ETag": f'"{etag}"'}


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body, headers: dict, head: bool = False) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            if not isinstance(body, bytes):
                self.send_header("Content-Type", "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            raw = self._body()
            if parts[:3] == ["api", "repos", "create"]:
                return self._send(*hub.create_repo(json.loads(raw)))
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo_id, action, revision = "/".join(parts[2:4]), parts[4], "/".join(parts[5:])
                if repo_id not in hub.repos:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if action == "branch":
                    return self._send(*hub.create_branch(repo_id, revision))
                if action == "preupload":
                    return self._send(*hub.preupload(json.loads(raw)))
                if action == "commit":
                    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
                    return self._send(*hub.commit(repo_id, revision, lines, parse_qs(url.query),
                                                  self.headers.get("Authorization")))
            self._send(404, {"error": f"not faked: POST {url.path}"}, {})

        def _resolve(self, head: bool) -> None:
            parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                status, body, headers = hub.resolve(repo_id, revision, path)
                return self._send(status, body, headers, head=head)
            self._send(404, {"error": f"not faked: {self.command} {self.path}"}, {}, head=head)

        def do_HEAD(self) -> None:
            self._resolve(head=True)

        def do_GET(self) -> None:
            self._resolve(head=False)

    return Handler
