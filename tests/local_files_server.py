"""A file server on 127.0.0.1 for acquisition tests: Range requests, a dropped connection on the
first request of chosen paths, and a stub of the Hugging Face hub's dataset API (gated)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> content
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, first GET only
    hub: dict[str, dict[str, Any]] = field(default_factory=dict)  # repo -> {sha, files, token}
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_hub_dataset(self, repo: str, sha: str, files: dict[str, bytes], token: str) -> None:
        """Serve ``files`` as dataset ``repo`` at commit ``sha``, only to ``Bearer token``."""
        self.hub[repo] = {"sha": sha, "files": files, "token": token}
        for name, content in files.items():
            self.files[f"/datasets/{repo}/resolve/{sha}/{name}"] = content


class _Handler(BaseHTTPRequestHandler):
    server_state: FileServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self, repo: str) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.server_state.hub[repo]['token']}"

    def _gated(self) -> None:
        self._reply(403, b'{"error": "Access to this dataset is restricted."}',
                    {"X-Error-Code": "GatedRepo", "X-Error-Message": "gated",
                     "Content-Type": "application/json"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server_state
        path = unquote(urlparse(self.path).path)
        with state._lock:
            state.requests.append((path, self.headers.get("Range")))
        if path.startswith("/api/datasets/"):
            return self._dataset_info(path.removeprefix("/api/datasets/"))
        for repo in state.hub:
            if path.startswith(f"/datasets/{repo}/") and not self._authorised(repo):
                return self._gated()
        content = state.files.get(path)
        if content is None:
            return self._reply(404, b"not found")
        start = 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0])
        body = content[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with state._lock:
            cut = state.drop_after.pop(path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _dataset_info(self, rest: str) -> None:
        repo = "/".join(rest.split("/")[:2])
        entry = self.server_state.hub.get(repo)
        if entry is None:
            return self._reply(404, b'{"error": "Repository not found"}',
                               {"X-Error-Code": "RepoNotFound"})
        if not self._authorised(repo):
            return self._gated()
        siblings = [{"rfilename": name, "size": len(content),
                     "lfs": {"size": len(content), "pointerSize": 134,
                             "sha256": hashlib.sha256(content).hexdigest()}}
                    for name, content in entry["files"].items()]
        siblings.append({"rfilename": "README.md", "size": 10})
        body = json.dumps({"id": repo, "sha": entry["sha"], "gated": "manual",
                           "siblings": siblings}).encode()
        self._reply(200, body, {"Content-Type": "application/json"})
