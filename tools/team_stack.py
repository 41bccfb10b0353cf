"""The team store on one machine: PostgreSQL 15 (its own data folder), an S3-compatible object store
(moto's server mode; real S3 or MinIO in a lab) and `mlflow server` on both, serving artifacts.

    python tools/team_stack.py up      # start what is not running; print the `export` lines members need
    python tools/team_stack.py down    # stop all three; the data stays
    python tools/team_stack.py env     # the export lines again

Everything lives in one folder, V2V_LAB_TEAM_DIR (default .v2v-lab/team): postgres/ (the cluster),
s3.jsonl (the object store's contents: moto keeps objects in memory, so its request recorder writes
every change there and `up` replays it), logs/, and stack.json (the ports). PostgreSQL will not run
as root: as root, the cluster runs as the system user `postgres`. Ports: V2V_LAB_TEAM_PG_PORT
(55432), V2V_LAB_TEAM_S3_PORT (55433), V2V_LAB_TEAM_MLFLOW_PORT (55434). The stack listens on
loopback with trust authentication: it is for trying the team setup and for tests; a lab's server
puts PostgreSQL, S3 and `mlflow server` behind its own accounts (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from v2v_lab._net import free_port

PG_BIN = Path(os.environ.get("V2V_LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
BUCKET = "v2v-lab"
DATABASES = ("mlflow", "v2v_ledger")
S3_KEYS = {"AWS_ACCESS_KEY_ID": "v2v-lab", "AWS_SECRET_ACCESS_KEY": "v2v-lab-secret", "AWS_DEFAULT_REGION": "us-east-1"}
BIN = Path(sys.executable).parent


def team_dir() -> Path:
    return Path(os.environ.get("V2V_LAB_TEAM_DIR") or ".v2v-lab/team").resolve()


PORT_VARIABLES = {"pg": "V2V_LAB_TEAM_PG_PORT", "s3": "V2V_LAB_TEAM_S3_PORT", "mlflow": "V2V_LAB_TEAM_MLFLOW_PORT"}
DEFAULT_PORTS = {"pg": 55432, "s3": 55433, "mlflow": 55434}


def ports(folder: Path) -> dict[str, int]:
    """The stack's ports: those saved in stack.json, else the variables', else the defaults. A fresh
    folder never adopts a service it did not start: a default port that something else answers on
    (another checkout's stack, another CI job on this machine) is replaced by a free one."""
    saved = folder / "stack.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    chosen = {}
    for part, variable in PORT_VARIABLES.items():
        given = os.environ.get(variable)
        port = int(given) if given else DEFAULT_PORTS[part]
        if _answers(port):
            if given:
                sys.exit(f"team-up: {variable}={port} is taken by another program; choose a free port")
            port = free_port()
            print(f"# team-up: port {DEFAULT_PORTS[part]} is taken by another program; this stack uses {port}",
                  file=sys.stderr)
        chosen[part] = port
    return chosen


def urls(p: dict[str, int]) -> dict[str, str]:
    """What a member exports. Artifacts go through the tracking server (--serve-artifacts), so
    members need no object-store address or keys of their own."""
    return {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{p['mlflow']}",
            "V2V_LAB_LEDGER_URL": f"postgresql://v2v@127.0.0.1:{p['pg']}/v2v_ledger"}


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return False
        # A port in the ephemeral range can "answer" by connecting to itself (TCP simultaneous open)
        # when the kernel picks it as the source port: that is nobody listening.
        return s.getsockname() != s.getpeername()


def _wait(port: int, what: str, log: Path, pid: int | None = None, seconds: float = 90,
          also: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(port):
            return
        if pid is not None and not _alive(pid):
            break  # it has stopped: say why now, not in a minute
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    more = ""
    if also is not None and also.is_file():  # what it depends on may be why (PostgreSQL for mlflow)
        more = f"\nthe end of {also}:\n{also.read_text(errors='replace')[-1000:]}"
    sys.exit(f"team-up: {what} is not answering on port {port}; the end of its log ({log}):\n{tail}{more}")


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:  # not our child (started by an earlier `up`)
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def _running(port: int, pid: int | None, part: str) -> bool:
    """Whether this stack's own `part` is up on `port`. Another program answering there is never
    taken for it: the stack would then write into somebody else's service, and lose it when that
    one stops (two CI jobs on one machine did exactly that)."""
    if not _answers(port):
        return False
    if pid is not None and _alive(pid):
        return True
    sys.exit(f"team-up: port {port} ({part}) is taken by another program, not this stack's; free it, or use "
             f"a fresh V2V_LAB_TEAM_DIR with {PORT_VARIABLES[part]} set to a free port")


def _saved_pid(pidfile: Path) -> int | None:
    return int(pidfile.read_text()) if pidfile.is_file() else None


def _postmaster_pid(data: Path) -> int | None:
    """The running cluster's postmaster (first line of postmaster.pid), if the folder has one."""
    pidfile = data / "postmaster.pid"
    return int(pidfile.read_text().split("\n", 1)[0]) if pidfile.is_file() else None


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the system user postgres."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_postgres(folder: Path, port: int) -> None:
    data, run, log = folder / "postgres", folder / "postgres-run", folder / "logs" / "postgres.log"
    if _running(port, _postmaster_pid(data), "pg"):
        return
    for path in (run, log):
        if path == log:
            log.touch()
        else:
            path.mkdir(exist_ok=True)
        _own(path)
    if not (data / "PG_VERSION").is_file():
        data.mkdir(exist_ok=True)
        _own(data)
        subprocess.run([*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(data), "-U", "v2v", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                    "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {run}", "start"], check=True,
                   stdout=subprocess.DEVNULL)
    for db in DATABASES:
        exists = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "v2v", "-d",
                                 "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{db}'"],
                                capture_output=True, text=True, check=True).stdout.strip()
        if not exists:
            subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "v2v", db], check=True)


def _spawn(command: list[str], log: Path, pidfile: Path, env: dict[str, str]) -> int:
    with open(log, "a") as fh:
        proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    return proc.pid


def start_s3(folder: Path, port: int) -> None:
    if _running(port, _saved_pid(folder / "s3.pid"), "s3"):
        return
    import httpx

    recording = folder / "s3.jsonl"
    env = {**os.environ, "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)}
    log = folder / "logs" / "s3.log"
    pid = _spawn([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log, folder / "s3.pid", env)
    _wait(port, "the object store (moto)", log, pid)
    base = f"http://127.0.0.1:{port}/moto-api/recorder"
    if recording.is_file() and recording.stat().st_size:
        httpx.post(f"{base}/replay-recording", timeout=120).raise_for_status()  # the data kept at the last down
    httpx.post(f"{base}/start-recording", timeout=30).raise_for_status()
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=S3_KEYS["AWS_DEFAULT_REGION"],
                      aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"])
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)


def start_mlflow(folder: Path, p: dict[str, int]) -> None:
    if _running(p["mlflow"], _saved_pid(folder / "mlflow.pid"), "mlflow"):
        return
    # MLflow 3's server also starts a job runner and its huey consumers, each importing mlflow: the
    # stack uses none of them, and without them the server answers in about half the time.
    env = {**os.environ, **S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{p['s3']}",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = folder / "logs" / "mlflow.log"
    pid = _spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(p["mlflow"]),
            "--backend-store-uri", f"postgresql://v2v@127.0.0.1:{p['pg']}/mlflow",
            "--artifacts-destination", f"s3://{BUCKET}/artifacts", "--serve-artifacts", "--workers", "2"],
           log, folder / "mlflow.pid", env)
    _wait(p["mlflow"], "mlflow server", log, pid, 180, also=folder / "logs" / "postgres.log")


def up() -> None:
    folder = team_dir()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    p = ports(folder)
    (folder / "stack.json").write_text(json.dumps(p))
    t = time.monotonic()
    start_postgres(folder, p["pg"])
    start_s3(folder, p["s3"])
    start_mlflow(folder, p)
    print(f"# team store up in {time.monotonic() - t:.1f} s (data in {folder}); for each member's shell:",
          file=sys.stderr)
    env()


def env() -> None:
    for name, value in urls(ports(team_dir())).items():
        print(f"export {name}={value}")


def _stop_pid(pidfile: Path) -> None:
    if not pidfile.is_file():
        return
    pid = int(pidfile.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pidfile.unlink(missing_ok=True)


def down() -> None:
    folder = team_dir()
    _stop_pid(folder / "mlflow.pid")
    _stop_pid(folder / "s3.pid")
    if (folder / "postgres" / "postmaster.pid").is_file():
        subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(folder / "postgres"), "-m", "fast", "-w",
                        "stop"], stdout=subprocess.DEVNULL, check=False)
    print(f"team store stopped; its data stays in {folder}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["up", "down", "env"])
    {"up": up, "down": down, "env": env}[ap.parse_args().action]()


if __name__ == "__main__":
    main()
