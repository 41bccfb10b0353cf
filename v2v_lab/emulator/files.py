"""The emulator's file routes: signed output downloads and the two-step upload (a slot, then the
bytes), with their limits. Inputs and outputs are kept under ids the emulator makes, never under
a name a client gave."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .state import UploadRecord
from .wire import _BadBody, _chunks, _error, _object_body

if TYPE_CHECKING:
    from .state import EmulatorState, TaskRecord

__all__ = ["MIN_UPLOAD_BYTES", "OUTPUT_TYPES", "UUID_RE", "FileRoutes"]

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MIN_UPLOAD_BYTES = 512
# The names an output is served under, by its format (ModelSpec.output_suffix), and their types.
OUTPUT_TYPES = {"output.mp4": "video/mp4", "output.mov": "video/quicktime", "output.zip": "application/zip"}


class FileRoutes:
    """Mixed into EmulatorApp, which holds these attributes."""

    state: EmulatorState
    secret: bytes
    base_url: str
    max_upload_bytes: int

    def _task_or_404(self, task_id: str) -> TaskRecord | None:
        if not UUID_RE.match(task_id):
            return None
        with self.state.lock:
            return self.state.tasks.get(task_id)

    def _sign_output(self, task: TaskRecord) -> str:
        """A URL for the task's output, named as its format is (output.mp4, output.mov, output.zip)."""
        expires = math.ceil(time.time() + self.state.timing.output_ttl_s)
        sig = hmac.new(self.secret, f"{task.id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]
        name = Path(task.output_path or "output.mp4").name
        return f"{self.base_url}/_outputs/{task.id}/{name}?expires={expires}&sig={sig}"

    async def output(self, request: Request) -> Response:
        task_id, name = request.path_params["task_id"], request.path_params["name"]
        if not UUID_RE.match(task_id) or name not in OUTPUT_TYPES:
            return _error(404, "Not found")
        try:
            expires = int(request.query_params.get("expires", "0"))
        except ValueError:
            return _error(403, "Invalid signature")
        want = hmac.new(self.secret, f"{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(want, request.query_params.get("sig", "")):
            return _error(403, "Invalid signature")
        if time.time() > expires:
            return _error(403, "Request has expired")
        task = self._task_or_404(task_id)
        if task is None or task.output_path is None or Path(task.output_path).name != name:
            return _error(404, "Not found")
        data = Path(task.output_path).read_bytes()
        if self.state.dice.roll(self.state.dice.config.corrupt_output_rate, "corrupt_output"):
            # What a CDN error page or a broken encoder delivers: a full, well-formed 200 that is no video.
            data = (b"<!doctype html><title>502</title>" * (len(data) // 33 + 1))[:len(data)]
        headers = {"content-length": str(len(data)), "content-type": OUTPUT_TYPES[name]}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        faults, dice = self.state.dice.config, self.state.dice
        truncate = dice.roll(faults.truncate_rate, "truncate_output")
        return StreamingResponse(_chunks(data, truncate, faults.slow_download_s), headers=headers)

    # -- uploads ---------------------------------------------------------------------------------
    async def create_upload(self, request: Request) -> Response:
        try:
            body = await _object_body(request)
        except _BadBody as bad:
            return bad.response
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename or len(filename) > 255:
            return _error(400, "filename: Required (a file name of at most 255 characters)")
        if body.get("type", "ephemeral") != "ephemeral":
            return _error(400, "type: Invalid enum value. Expected 'ephemeral'")
        upload_id = str(uuid.uuid4())
        sig = hmac.new(self.secret, upload_id.encode(), hashlib.sha256).hexdigest()
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:100] or "file"
        with self.state.lock:
            self.state.uploads[upload_id] = UploadRecord(upload_id, safe_name, time.monotonic(), None, sig)
        return JSONResponse({
            "uploadUrl": f"{self.base_url}/_uploads/{upload_id}",
            "fields": {"key": f"uploads/{upload_id}/{safe_name}", "x-emulator-signature": sig},
            "runwayUri": f"runway://uploads/{upload_id}",
        })

    async def receive_upload(self, request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        with self.state.lock:
            up = self.state.uploads.get(upload_id) if UUID_RE.match(upload_id) else None
        if up is None:
            return _error(404, "Not found")
        length = request.headers.get("content-length")
        if length is None:
            return _error(411, "Content-Length required")
        if int(length) > self.max_upload_bytes + 64 * 1024:
            return _error(400, f"file: EntityTooLarge (at most {self.max_upload_bytes} bytes)")
        form = await request.form(max_files=1, max_fields=16)
        try:
            if not hmac.compare_digest(str(form.get("x-emulator-signature", "")), up.signature):
                return _error(403, "Invalid signature")
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return _error(400, "file: Required")
            data = await upload.read(self.max_upload_bytes + 1)
        finally:
            await form.close()
        if len(data) > self.max_upload_bytes:
            return _error(400, f"file: EntityTooLarge (at most {self.max_upload_bytes} bytes)")
        if len(data) < MIN_UPLOAD_BYTES:
            return _error(400, f"file: EntityTooSmall (at least {MIN_UPLOAD_BYTES} bytes)")
        path = self.state.workdir / "uploads" / upload_id / "data"  # never a client-given name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        with self.state.lock:
            up.path = str(path)
        return Response(status_code=204)

    # -- organization ---------------------------------------------------------------------------
