"""A loopback fake of the Hugging Face Hub's file endpoint, for tests of flaky networks.

`FakeHub()` serves `HEAD`/`GET {endpoint}/{repo_id}/resolve/{revision}/{filename}` on 127.0.0.1 (a free
port), with the headers huggingface_hub needs (X-Repo-Commit, ETag, Content-Length; 404 with
X-Error-Code EntryNotFound / RepoNotFound), honouring `Range`. Faults are set per file name:

- `hub.fail(name, status=500)`: answer every request for it with that status;
- `hub.fail(name, silent=True)`: never answer (the handler waits until the server stops);
- `hub.fail(name, drop=n)`: cut the first n GET responses after half the body;
- `hub.fail(name, drop_all=True)`: cut every GET response after its headers;
- `hub.fail(name, short=True)`: GET sends fewer bytes than HEAD announced (a wrong size);
- `hub.fail(name, garbage=True)`: GET sends zeros of the right size (the ETag stays the true file's).

Use it as a context manager; point polyformer at it with `monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)`
(polyformer reads HF_ENDPOINT when it resolves a file). `hub.requests` counts (method, file name).
"""

from __future__ import annotations

import collections
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self):
        self.repos: Dict[str, Dict[str, bytes]] = {}
        self.faults: Dict[str, dict] = {}
        self.requests = collections.Counter()
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def add_folder(self, repo_id: str, folder) -> None:
        """Serve every file of a local folder (not its hidden ones) as the repo `repo_id`."""
        import pathlib

        folder = pathlib.Path(folder)
        self.repos[repo_id] = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
                               if p.is_file() and not p.name.startswith(".")}

    def fail(self, filename: str, **fault) -> None:
        self.faults[filename] = fault

    def heal(self, filename: str = None) -> None:
        if filename is None:
            self.faults.clear()
        else:
            self.faults.pop(filename, None)


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            parts = self.path.split("?")[0].lstrip("/").split("/")
            if "resolve" not in parts:
                return self._status(404, {"X-Error-Code": "RepoNotFound"})
            at = parts.index("resolve")
            repo_id, filename = "/".join(parts[:at]), "/".join(parts[at + 2:])
            with hub._lock:
                hub.requests[(self.command, filename)] += 1
                fault = dict(hub.faults.get(filename, {}))
                if fault.get("drop") and body:
                    hub.faults[filename]["drop"] -= 1
            if fault.get("silent"):
                hub.stopped.wait(30)
                self.close_connection = True
                return
            if fault.get("status"):
                return self._status(fault["status"], {"X-Repo-Commit": COMMIT})
            files = hub.repos.get(repo_id)
            if files is None:
                return self._status(401, {"X-Error-Code": "RepoNotFound"})
            if filename not in files:
                return self._status(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            data = files[filename]
            etag = hashlib.sha256(data).hexdigest()
            start = 0
            if body and self.headers.get("Range", "").startswith("bytes="):
                start = int(self.headers["Range"][len("bytes="):].split("-")[0] or 0)
            chunk = data[start:]
            if fault.get("garbage"):
                chunk = b"\0" * len(chunk)
            if fault.get("short") and body:
                chunk = chunk[: len(chunk) // 2]
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{etag}"')
            self.send_header("Content-Length", str(len(chunk)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            if fault.get("drop_all"):
                self.close_connection = True
                return
            if fault.get("drop"):
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

        def _status(self, status: int, headers: dict) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
