"""Videos by address: a small HTTP server on 127.0.0.1, one per kernel, serving only the files a view
registered, so a page's widget state carries a URL and not megabytes of video.

Each registered file gets an unguessable token (128 random bits) and is reachable only as
/v/<token>/<its name>; nothing else answers (no listing, no paths from the request ever touch the
disk). GET and HEAD with Range requests (one range), so the browser seeks and starts playing before
the whole file is there. The server binds loopback: the page's browser must run on the same machine
as the kernel (Jupyter or Voila on one's own computer, the tests). For a kernel elsewhere (Colab, a
remote Jupyter) the views send the bytes in the widget state instead (`videos="inline"`).
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

__all__ = ["MediaServer", "media_server"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16


class MediaServer:
    """Loopback HTTP server for registered files; `url(path)` gives a file's address (the same one each
    time for the same file, so the browser's cache holds)."""

    def __init__(self) -> None:
        self._files: dict[str, Path] = {}
        self._tokens: dict[Path, str] = {}
        self._lock = threading.Lock()
        files, lock = self._files, self._lock

        class Handler(_Handler):
            def lookup(self, token: str) -> Path | None:
                with lock:
                    return files.get(token)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="v2v-lab-media", daemon=True)
        self._thread.start()

    def url(self, path: str | Path) -> str:
        """The address the browser fetches `path` from (registering it on first use)."""
        path = Path(path).resolve()
        with self._lock:
            token = self._tokens.get(path)
            if token is None:
                token = secrets.token_urlsafe(16)
                self._tokens[path], self._files[token] = token, path
        return f"http://127.0.0.1:{self.port}/v/{token}/{quote(path.name)}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a seek is a new Range request on the same connection

    def lookup(self, token: str) -> Path | None:  # replaced per server
        return None

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # a kernel's output is no place for an access log

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        parts = self.path.split("?", 1)[0].split("/")
        path = self.lookup(parts[2]) if len(parts) == 4 and parts[1] == "v" else None
        if path is None or not path.is_file():
            self._empty(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        span = _span(self.headers.get("Range"), size)
        if span is None:
            self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"})
            return
        start, end = span
        partial = (start, end) != (0, size - 1) or "Range" in self.headers
        self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(max(end - start + 1, 0)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "private, max-age=3600")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body and end >= start:
            with open(path, "rb") as f:
                f.seek(start)
                _copy(f, self.wfile, end - start + 1)

    def _empty(self, status: HTTPStatus, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _span(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte to send for a Range header (RFC 9110, one range); None: not satisfiable."""
    if not header:
        return 0, size - 1
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return 0, size - 1  # a form we do not serve (several ranges): the whole file, as the RFC allows
    first, last = match.groups()
    if first == "":  # the last N bytes
        return (max(size - int(last), 0), size - 1) if int(last) > 0 and size else None
    start, end = int(first), min(int(last) if last else size - 1, size - 1)
    return (start, end) if start < size and start <= end else None


def _copy(src: BinaryIO, dst: BufferedIOBase, length: int) -> None:
    try:
        while length > 0:
            chunk = src.read(min(_CHUNK, length))
            if not chunk:
                return
            dst.write(chunk)
            length -= len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the browser dropped the request (a seek elsewhere): nothing to do


_server: MediaServer | None = None
_server_lock = threading.Lock()


def media_server() -> MediaServer:
    """The kernel's one media server, started on first use."""
    global _server
    with _server_lock:
        if _server is None:
            _server = MediaServer()
        return _server

