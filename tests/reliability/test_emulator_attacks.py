"""The emulator under attack: path traversal on output and upload routes, oversized uploads and data
URIs, URLs off loopback, forged signatures, wrong and missing keys. All refused, nothing written
outside its folder, no task made."""

from __future__ import annotations

import base64
import socket
import time
import uuid

import httpx

from v2v_lab.api.catalog import RUNWAY_API_VERSION
from v2v_lab.emulator import Emulator

from ..conftest import DEMO
from .conftest import report

KEY = "key_" + "a1" * 32


def _raw(emu: Emulator, request_line: str, body: bytes = b"", headers: str = "") -> tuple[int, str]:
    """Send bytes exactly as written (httpx would normalise '..' away); return status and body."""
    host = emu.base_url.split("//")[1]
    h, port = host.rsplit(":", 1)
    with socket.create_connection((h, int(port)), timeout=10) as s:
        s.sendall(f"{request_line} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{headers}"
                  f"Connection: close\r\n\r\n".encode() + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, content = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content.decode(errors="replace")


def _answer(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.text


def test_the_emulator_refuses_every_attack(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    results: dict[str, tuple[int, str]] = {}
    auth = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": RUNWAY_API_VERSION}
    with Emulator(key=KEY, render_scale=0.1, max_upload_bytes=2_000_000, workdir=tmp_path / "emu") as emu, \
            httpx.Client(base_url=emu.base_url, timeout=10) as http:
        # One real task, so that a forged signature is refused for being forged, not for a missing task.
        real = http.post("/v1/video_to_video", headers=auth, json={
            "model": "gen4_aleph", "videoUri": "data:video/mp4;base64," + base64.b64encode(DEMO.read_bytes()).decode(),
            "promptText": "x", "ratio": "1280:720"}).json()["id"]
        while (task := http.get(f"/v1/tasks/{real}", headers=auth).json())["status"] not in ("SUCCEEDED", "FAILED"):
            time.sleep(0.05)
        assert task["status"] == "SUCCEEDED" and http.get(task["output"][0]).status_code == 200
        tid = str(uuid.uuid4())
        secret = str(outside / "secret.txt").lstrip("/")
        # Path traversal on the output route, raw and encoded.
        for name, line in {
            "output ../ raw": f"GET /_outputs/../../{secret}",
            "output %2e%2e": f"GET /_outputs/%2e%2e/%2e%2e/{secret}",
            "output name ..%2f": f"GET /_outputs/{tid}/..%2f..%2f{secret.replace('/', '%2f')}",
            "output absolute name": f"GET /_outputs/{tid}/%2f{secret.replace('/', '%2f')}",
        }.items():
            results[name] = _raw(emu, line)
        # ...and on the upload route.
        for name, line in {
            "upload ../ raw": "POST /_uploads/../../tmp/evil",
            "upload %2e%2e": "POST /_uploads/%2e%2e%2f%2e%2e%2ftmp%2fevil",
        }.items():
            results[name] = _raw(emu, line, b"x" * 10)
        # An upload slot, then a forged signature, then a file over the limit.
        slot = http.post("/v1/uploads", json={"filename": "../../evil.mp4", "type": "ephemeral"}, headers=auth).json()
        forged = {**slot["fields"], "x-emulator-signature": "0" * 64}
        results["upload forged signature"] = _answer(http.post(slot["uploadUrl"], data=forged,
                                                               files={"file": ("a.mp4", DEMO.read_bytes())}))
        # The same slot used honestly: accepted, and kept under its upload id, never under the
        # "../../evil.mp4" the client named it.
        honest = http.post(slot["uploadUrl"], data=slot["fields"], files={"file": ("a.mp4", DEMO.read_bytes())})
        assert honest.status_code == 204, honest.text
        results["upload over max bytes"] = _answer(http.post(slot["uploadUrl"], data=slot["fields"],
                                                             files={"file": ("a.mp4", b"\0" * 3_000_000)}))
        # Outputs need a valid, unexpired signature: a real task's output, its signature forged or
        # lent from another expiry time.
        good = httpx.URL(task["output"][0])
        results["output forged signature"] = _answer(http.get(good.copy_with(params={
            "expires": "9999999999", "sig": "0" * 32})))
        results["output signature of another expiry"] = _answer(http.get(good.copy_with(params={
            "expires": str(int(good.params["expires"]) + 1), "sig": good.params["sig"]})))
        # URLs off loopback (the emulator has no network and must not try), and other schemes.
        for name, uri in {"https off loopback": "https://example.com/v.mp4",
                          "private address": "http://10.0.0.1/v.mp4",
                          "host that only looks local": "http://localhost.example.com/v.mp4",
                          "file scheme": "file:///etc/passwd",
                          "upload id traversal": "runway://uploads/../../etc/passwd"}.items():
            results[f"videoUri {name}"] = http.post("/v1/video_to_video", headers=auth, json={
                "model": "gen4_aleph", "videoUri": uri, "promptText": "x", "ratio": "1280:720"})
            results[f"videoUri {name}"] = _answer(results[f"videoUri {name}"])
        big = base64.b64encode(b"\0" * 33_000_000).decode()
        results["data URI over the limit"] = http.post("/v1/video_to_video", headers=auth, json={
            "model": "gen4_aleph", "videoUri": f"data:video/mp4;base64,{big}", "promptText": "x"})
        results["data URI over the limit"] = _answer(results["data URI over the limit"])
        # Keys.
        results["wrong key"] = _answer(http.get("/v1/organization", headers={
            **auth, "Authorization": "Bearer key_wrong"}))
        results["no key"] = _answer(http.get("/v1/organization", headers={"X-Runway-Version": RUNWAY_API_VERSION}))
        results["wrong key on create"] = _answer(http.post(
            "/v1/video_to_video", headers={**auth, "Authorization": "Bearer x"},
            json={"model": "gen4_aleph", "videoUri": "runway://x", "promptText": "x"}))
        tasks = emu.stats["tasks_total"]
        written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    # Each attack meets its own refusal: the status and the reason, not just "some error".
    expected = {**{k: (404, "Not found") for k in results if k.startswith(("output ../", "output %2e", "output name",
                                                                            "output absolute", "upload ../",
                                                                            "upload %2e"))},
                "upload forged signature": (403, "signature"), "upload over max bytes": (400, "EntityTooLarge"),
                "output forged signature": (403, "Invalid signature"),
                "output signature of another expiry": (403, "Invalid signature"),
                # Off loopback: refused for having no network, before any try (a failed fetch says otherwise).
                "videoUri https off loopback": (400, "videoUri: the emulator has no network"),
                "videoUri private address": (400, "videoUri: the emulator has no network"),
                "videoUri host that only looks local": (400, "videoUri: the emulator has no network"),
                "videoUri file scheme": (400, "videoUri: Invalid input"),
                "videoUri upload id traversal": (400, "videoUri: unknown or expired runway:// URI"),
                "data URI over the limit": (400, "videoUri: data URI over"),
                "wrong key": (401, "API key"), "no key": (401, "API key"), "wrong key on create": (401, "API key")}
    got = {k: (status, next((want for want in [expected[k][1]] if want.lower() in text.lower()), text[:80]))
           for k, (status, text) in results.items()}
    assert got == expected
    refused = {k: v for k, v in results.items() if v[0] >= 400}
    assert tasks == 1  # the one real task; no attack made one
    assert (outside / "secret.txt").read_text() == "top secret"
    assert not any("evil" in p for p in written) and all(p.startswith(("emu/", "outside/")) for p in written)
    report("emulator_attacks", {"attacks": len(results), "refused": len(refused), "tasks_created": tasks,
                                "status_codes": {k: v[0] for k, v in results.items()}})
