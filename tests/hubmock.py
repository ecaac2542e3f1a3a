"""A local fake of the Hugging Face hub's download endpoint, for tests without internet.

It answers like huggingface.co does for ``huggingface_hub`` 2.x (``get_hf_file_metadata`` +
``http_get``, as used by ``hf_hub_download`` and by ``facedancer models fetch``):

* ``HEAD|GET /{namespace}/{repo}/resolve/{revision}/{filename}``
  - regular (git) file: 200 with ``X-Repo-Commit``, ``ETag`` (git blob sha1), ``Content-Length``;
  - LFS file: 302 to a CDN URL on another origin (``localhost`` instead of ``127.0.0.1``, so
    the client must not forward its token) with ``X-Repo-Commit``, ``X-Linked-Etag`` (the
    file's sha256, or a wrong one for a "corrupted" file), ``X-Linked-Size``;
  - gated repository without the right ``Authorization: Bearer``: 401 (no token) or 403
    (another token) with ``X-Error-Code: GatedRepo``; unknown repository: 401
    ``RepoNotFound``; unknown file: 404 ``EntryNotFound``.
* ``GET /cdn/{key}``: the bytes, with ``Range: bytes=N-`` answered by 206 + ``Content-Range``.
  A file can be set to cut its first ``truncate_once`` transfers to half (full Content-Length
  announced, connection closed early), which the client must resume with a Range request, or
  to stop every transfer at byte ``cut_at`` (a link that keeps dying at the same place).

Every request is logged (method, path, Range, Authorization) for assertions. The server
listens on 127.0.0.1 on a random port in a daemon thread, and shuts itself down after
``lifetime_s`` even if a test forgets to stop it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    content: bytes
    lfs: bool = True
    announced_sha256: str | None = None  # a wrong value makes the file "corrupted"
    truncate_once: int = 0  # how many GETs end early (half the bytes, connection closed)
    cut_at: int | None = None  # every GET stops at this byte offset and hangs up (a dead link)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def git_sha1(self) -> str:
        blob = b"blob %d\0" % len(self.content) + self.content
        return hashlib.sha1(blob).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    authorization: str | None
    status: int = 0


@dataclass
class HubRepo:
    files: dict[str, HubFile] = field(default_factory=dict)
    gated_token: str | None = None  # set: only this bearer token may download


class HubMock:
    """``with HubMock() as hub: hub.add(...); os.environ['HF_ENDPOINT'] = hub.endpoint``."""

    def __init__(self, lifetime_s: float = 120.0):
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._lifetime_s = lifetime_s
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- content --------------------------------------------------------------------------------

    def add(self, repo_id: str, filename: str, content: bytes, *, lfs: bool = True,
            gated_token: str | None = None, announced_sha256: str | None = None,
            truncate_once: int = 0, cut_at: int | None = None) -> HubFile:
        repo = self.repos.setdefault(repo_id, HubRepo())
        if gated_token is not None:
            repo.gated_token = gated_token
        hub_file = HubFile(content, lfs, announced_sha256, truncate_once, cut_at)
        repo.files[filename] = hub_file
        return hub_file

    def requests_for(self, fragment: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests
                    if fragment in r.path and (method is None or r.method == method)]

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HubMock:
        hub = self

        class Handler(_Handler):
            mock = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self._lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = server  # keep the port readable for messages after stop

    def __enter__(self) -> HubMock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    mock: HubMock
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # -- routing --------------------------------------------------------------------------------

    def _dispatch(self, head: bool) -> None:
        request = Request(self.command, unquote(urlparse(self.path).path),
                          self.headers.get("Range"), self.headers.get("Authorization"))
        with self.mock._lock:
            self.mock.requests.append(request)
        parts = request.path.strip("/").split("/")
        if parts[0] == "cdn" and len(parts) >= 2:
            self._cdn("/".join(parts[1:]), head, request)
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve(f"{parts[0]}/{parts[1]}", "/".join(parts[4:]), head, request)
        else:
            self._reply(404, request, {"X-Error-Code": "EntryNotFound"}, head=head)

    def _resolve(self, repo_id: str, filename: str, head: bool, request: Request) -> None:
        repo = self.mock.repos.get(repo_id)
        if repo is None:
            self._reply(401, request, {"X-Error-Code": "RepoNotFound",
                                       "X-Error-Message": "Repository not found"}, head=head)
            return
        if repo.gated_token is not None:
            auth = request.authorization
            if auth != f"Bearer {repo.gated_token}":
                status = 401 if not auth else 403
                self._reply(status, request, {
                    "X-Error-Code": "GatedRepo",
                    "X-Error-Message": f"Access to model {repo_id} is restricted. You must have "
                    "access to it and be authenticated to access it. Please log in."}, head=head)
                return
        hub_file = repo.files.get(filename)
        if hub_file is None:
            self._reply(404, request, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT,
                                       "X-Error-Message": "Entry not found"}, head=head)
            return
        common = {"X-Repo-Commit": COMMIT}
        if hub_file.lfs:
            key = f"{repo_id}/{filename}"
            # Another origin than the endpoint, like cdn-lfs.huggingface.co: no token sent there.
            location = f"http://localhost:{self.mock.port}/cdn/{key}"
            self._reply(302, request, {
                **common, "Location": location,
                "X-Linked-Etag": f'"{hub_file.announced_sha256 or hub_file.sha256}"',
                "X-Linked-Size": str(len(hub_file.content)),
                "ETag": f'"{hub_file.git_sha1}"'}, head=head)
            return
        self._send_bytes(hub_file, request, head, {**common, "ETag": f'"{hub_file.git_sha1}"'})

    def _cdn(self, key: str, head: bool, request: Request) -> None:
        repo_id = "/".join(key.split("/")[:2])
        filename = "/".join(key.split("/")[2:])
        hub_file = self.mock.repos.get(repo_id, HubRepo()).files.get(filename)
        if hub_file is None:
            self._reply(404, request, {}, head=head)
            return
        self._send_bytes(hub_file, request, head, {"ETag": f'"{hub_file.sha256}"'})

    # -- responses ------------------------------------------------------------------------------

    def _send_bytes(self, hub_file: HubFile, request: Request, head: bool,
                    headers: dict[str, str]) -> None:
        data = hub_file.content
        total = len(data)
        start = 0
        status = 200
        if request.range and request.range.startswith("bytes="):
            first = request.range[len("bytes="):].split("-")[0]
            start = int(first) if first else 0
            if start >= total:
                self._reply(416, request, {"Content-Range": f"bytes */{total}"}, head=head)
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{total - 1}/{total}"}
        body = data[start:]
        headers = {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        send = len(body)
        if not head and hub_file.truncate_once > 0:
            with self.mock._lock:
                hub_file.truncate_once -= 1
            send = len(body) // 2
        if not head and hub_file.cut_at is not None and start + len(body) > hub_file.cut_at:
            send = min(send, max(hub_file.cut_at - start, 0))
        cut = send < len(body)
        request.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if cut:
            # Announce every byte, send fewer, hang up: a dropped connection mid-transfer.
            self.wfile.write(body[:send])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _reply(self, status: int, request: Request, headers: dict[str, str], *,
               head: bool) -> None:
        request.status = status
        body = b"" if head else f'{{"error": "{headers.get("X-Error-Message", status)}"}}'.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
