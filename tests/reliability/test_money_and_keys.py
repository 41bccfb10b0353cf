"""Money and keys (issue 13): no path pays twice, spends unasked, misprices, or sends the key where
the user did not point it. Each test names the case it proves; each failed on the code before it.

Creates are counted by the emulator itself (its task ledger), never by what v2v-lab says it did."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import mlflow
import numpy as np
import pytest
import yaml

from v2v_lab.cli import main
from v2v_lab.emulator import Emulator
from v2v_lab.errors import InputError
from v2v_lab.media.probe import probe_video
from v2v_lab.sweeps import run_sweep

from .._helpers import HeldTasks, Recorder, wait_until
from ..conftest import DEMO, free_port, moving_frames, on_a_terminal
from .conftest import write_spec

CLI = str(Path(sys.executable).with_name("v2v-lab"))
KEY = "key_" + "ab" * 64


@pytest.fixture(scope="module")
def emu():
    with Emulator(render_scale=0.1, queue_s=0.01) as e:
        yield e


def creates(e: Emulator) -> int:
    return len(e.tasks())


def sweep(spec: Path, emu: Emulator, *extra: str) -> int:
    return main(["sweep", str(spec), "--no-progress", "--base-url", emu.base_url, *extra])


def cli(*args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The console script, as a user types it."""
    full = {**os.environ, **(env or {})}
    return subprocess.run([CLI, *args], env=full, stdin=stdin, capture_output=True, text=True, timeout=timeout)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def parent_runs(experiment: str) -> list:
    exp = mlflow.MlflowClient().get_experiment_by_name(experiment)
    if exp is None:
        return []
    return mlflow.MlflowClient().search_runs([exp.experiment_id], "tags.`v2v.kind` = 'sweep'")


# -- paying twice ------------------------------------------------------------------------------------
def test_1_duplicate_entries_are_merged_and_paid_once(emu, mlflow_store, tmp_path, capsys):
    link = tmp_path / "same_clip.mp4"
    link.symlink_to(DEMO)
    spec = write_spec(tmp_path, experiment="dups", prompts=["neon city", "neon city"], seeds=[1, 1],
                      videos=[str(DEMO), str(link)], ratios=["1280:720", "1280:720"])
    before = creates(emu)
    assert sweep(spec, emu) == 0
    out = capsys.readouterr().out
    assert creates(emu) - before == 1, "sixteen spec entries naming one cell must pay for one task"
    assert "15 duplicate entries merged" in out
    assert "1 cells: 1 succeeded" in out
    # repeats: is the one way to ask for the same cell twice
    spec = write_spec(tmp_path, experiment="dups2", prompts=["neon city"], repeats=2)
    before = creates(emu)
    assert sweep(spec, emu) == 0
    assert creates(emu) - before == 2


def test_2_a_second_process_on_the_same_store_is_refused_whatever_its_state_folder(tmp_path):
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    spec = write_spec(tmp_path, experiment="two-homes", prompts=["neon city", "noir"], seeds=[1, 2])
    # The first sweep's tasks are held until the second has had its answer: the first is still
    # running then, however long the second takes to start on a loaded machine (with tasks of a
    # fixed 2 s it had sometimes finished first, and the second found nothing to do).
    with Emulator(render_scale=0.1) as slow, HeldTasks(slow) as held:
        env = {"MLFLOW_TRACKING_URI": store, "V2V_LAB_BASE_URL": slow.base_url}
        first = subprocess.Popen([CLI, "sweep", str(spec), "--no-progress"], env={
            **os.environ, **env, "V2V_LAB_HOME": str(tmp_path / "home_a")}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        wait_until(lambda: slow.tasks() or first.poll() is not None, 120, "the first sweep created no task")
        assert slow.tasks(), "the first sweep never created a task"
        late = subprocess.Popen([CLI, "sweep", str(spec), "--no-progress"], env={
            **os.environ, **env, "V2V_LAB_HOME": str(tmp_path / "home_b")}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Until it ends, or it paid too (more than the four cells' tasks: the count below says so).
        wait_until(lambda: late.poll() is not None or len(slow.tasks()) > 4, 120, "the second sweep did not end")
        held.release()
        second = subprocess.CompletedProcess(late.args, late.returncode, *late.communicate(timeout=120))
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
        assert second.returncode == 2, second.stderr
        assert "no other sweep is running" in one_line(second.stderr)
        assert len(slow.tasks()) == 4, "four cells, four creates: the second process paid for nothing"


def test_3_random_seeds_are_recovered_from_the_store_when_the_state_folder_is_lost(emu, mlflow_store, tmp_path,
                                                                                   capsys):
    spec = write_spec(tmp_path, experiment="random-seeds", seeds={"random": 2})
    before = creates(emu)
    assert sweep(spec, emu) == 0
    assert creates(emu) - before == 2
    shutil.rmtree(os.environ["V2V_LAB_HOME"])  # the state folder is lost; the store is kept
    capsys.readouterr()
    assert sweep(spec, emu) == 0
    assert creates(emu) - before == 2, "a rerun drew new seeds and paid again"
    assert "nothing to do" in capsys.readouterr().out


def test_4_a_done_cell_missing_from_another_store_is_logged_from_its_kept_output(emu, mlflow_store, tmp_path,
                                                                                 monkeypatch, capsys):
    spec = write_spec(tmp_path, experiment="two-stores")
    before = creates(emu)
    assert sweep(spec, emu) == 0
    assert creates(emu) - before == 1
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'second.db'}")
    assert sweep(spec, emu) == 0
    assert creates(emu) - before == 1, "the journal's done cell was paid for again"
    runs = mlflow.MlflowClient().search_runs(
        [mlflow.MlflowClient().get_experiment_by_name("two-stores").experiment_id], "tags.`v2v.kind` = 'cell'")
    assert len(runs) == 1 and runs[0].data.tags["v2v.status"] == "succeeded"
    assert "output.mp4" in {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    # A third store, and the kept output gone: reported, not paid, until --force.
    for output in Path(os.environ["V2V_LAB_HOME"]).glob("outputs/*/*/output.mp4"):
        output.unlink()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'third.db'}")
    capsys.readouterr()
    assert sweep(spec, emu) == 0
    out = capsys.readouterr().out
    assert creates(emu) - before == 1 and "1 missing" in out and "--force" in out
    assert sweep(spec, emu, "--force") == 0
    assert creates(emu) - before == 2


def test_5_a_rerun_with_nothing_to_do_writes_nothing_and_an_interrupted_parent_is_ended(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    try:
        spec = write_spec(tmp_path, experiment="parents", prompts=["neon city", "noir"])
        with Emulator(render_scale=0.1) as e:
            env = {"MLFLOW_TRACKING_URI": store, "V2V_LAB_BASE_URL": e.base_url, "V2V_LAB_HOME": str(tmp_path / "h")}
            # Killed (-9) right after its first cell was logged: the parent run is left RUNNING. (On a new
            # store the first tasks go out while the store and the parent are made: a kill that early
            # leaves no parent to end.)
            killed = cli("sweep", str(spec), "--no-progress", env={**env, "V2V_LAB_FAILPOINTS": "logged=1"})
            assert killed.returncode == -9
            (stale,) = parent_runs("parents")
            assert stale.info.status == "RUNNING"
            done = cli("sweep", str(spec), "--no-progress", env=env)
            assert done.returncode == 0, done.stderr
            runs = {r.info.run_id: r for r in parent_runs("parents")}
            assert runs[stale.info.run_id].info.status == "KILLED"
            (new,) = [r for r in runs.values() if r.info.run_id != stale.info.run_id]
            assert new.info.status == "FINISHED" and new.data.tags.get("v2v.continues") == stale.info.run_id
            again = cli("sweep", str(spec), "--no-progress", env=env)
            assert again.returncode == 0 and "nothing to do" in again.stdout
            assert len(parent_runs("parents")) == 2, "a rerun with nothing to do added a parent run"
            assert len(e.tasks()) == 2
    finally:
        mlflow.set_tracking_uri(None)


# -- spending unasked, or paying for what cannot be kept -------------------------------------------------
def test_6_generate_on_a_paid_provider_asks_first(tmp_path, small_clip):
    with Emulator(render_scale=0.1) as e:
        env = {"RUNWAYML_API_SECRET": KEY, "V2V_LAB_HOME": str(tmp_path / "h")}
        args = ["generate", small_clip, "--prompt", "noir", "--provider", "runway", "--base-url", e.base_url,
                "--out", str(tmp_path / "o.mp4")]
        no_tty = cli(*args, env=env)
        assert no_tty.returncode == 2 and "--yes" in one_line(no_tty.stderr)
        code, screen = on_a_terminal([CLI, *args], {**os.environ, **env}, b"n\n")
        assert code == 2 and "credits" in screen and "$" in screen
        code, screen = on_a_terminal([CLI, *args], {**os.environ, **env}, b"\x04")  # Ctrl-D: no answer is a no
        assert code == 2 and "Traceback" not in screen
        assert e.tasks() == [], "a generation was paid for without a yes"
        yes = cli(*args, "--yes", env=env)
        assert yes.returncode == 0, yes.stderr
        assert len(e.tasks()) == 1 and (tmp_path / "o.mp4").stat().st_size > 0


def test_7_and_8_generate_checks_out_and_timeout_before_sending(emu, tmp_path, small_clip, capsys):
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"a file the user wants to keep")
    before = sum(emu.stats["requests"].values())
    for extra, field in ((["--out", str(tmp_path)], "--out"),
                         (["--out", str(kept)], "--out"),
                         (["--out", str(tmp_path / "no" / "such" / "o.mp4")], "--out"),
                         (["--out", "/sys/o.mp4"], "--out"),
                         (["--timeout", "0"], "--timeout"),
                         (["--timeout", "-5"], "--timeout"),
                         (["--timeout", "nan"], "--timeout")):
        args = ["generate", small_clip, "--prompt", "noir", "--base-url", emu.base_url, *extra]
        if "--out" not in extra:
            args += ["--out", str(tmp_path / "new.mp4")]
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and field in one_line(err), (extra, err)
    assert kept.read_bytes() == b"a file the user wants to keep"
    assert sum(emu.stats["requests"].values()) == before, "a request was sent for an output that cannot be kept"
    assert main(["generate", small_clip, "--prompt", "noir", "--base-url", emu.base_url, "--out", str(kept),
                 "--force"]) == 0
    assert kept.read_bytes()[4:8] == b"ftyp"


def test_9_bad_numbers_are_refused_by_name(emu, mlflow_store, tmp_path):
    spec = write_spec(tmp_path, experiment="numbers")
    before = sum(emu.stats["requests"].values())
    for flag, value in (("--max-credits", "nan"), ("--max-credits", "-1"), ("--max-credits", "inf"),
                        ("--concurrency", "0"), ("--concurrency", "-1"), ("--concurrency", "two")):
        result = cli("sweep", str(spec), "--no-progress", flag, value, env={"V2V_LAB_BASE_URL": emu.base_url})
        assert result.returncode == 2 and flag in one_line(result.stderr), (flag, value, result.stderr)
    for options in ({"max_credits": float("nan")}, {"concurrency": 0}, {"concurrency": -1}):
        with pytest.raises(InputError):
            run_sweep(str(spec), progress=False, base_url=emu.base_url, **options)
    assert sum(emu.stats["requests"].values()) == before


# -- mispricing --------------------------------------------------------------------------------------
def _sparse(path: Path, codec: str, seconds: float, frames: int = 12) -> Path:
    """`frames` frames spread over `seconds`, in a stream that declares 24 fps."""
    pics = moving_frames(frames, 64, 48)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        step = int(seconds * 1000 / frames)
        for k, pic in enumerate(pics):
            frame = av.VideoFrame.from_ndarray(pic, format="rgb24")
            frame.pts, frame.time_base = k * step, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("name,codec", [("sparse.mkv", "libx264"), ("sparse.webm", "libvpx"),
                                        ("sparse.mp4", "libx264")])
def test_10_sparse_timestamps_are_priced_by_their_real_length(emu, mlflow_store, tmp_path, name, codec, capsys):
    long = _sparse(tmp_path / name, codec, 36.0)
    assert probe_video(long).duration_s >= 33.0, "12 frames over 36 s probed as half a second"
    spec = write_spec(tmp_path, experiment="sparse", videos=[str(long)], models=["aleph2"], ratios=[None])
    before = sum(emu.stats["requests"].values())
    assert sweep(spec, emu) == 2
    assert "video" in one_line(capsys.readouterr().err) and sum(emu.stats["requests"].values()) == before
    mid = _sparse(tmp_path / f"mid{Path(name).suffix}", codec, 24.0)
    spec = write_spec(tmp_path, experiment="sparse", videos=[str(mid)], models=["aleph2"], ratios=[None])
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    seconds = probe_video(mid).duration_s
    assert seconds >= 22.0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("aleph2"))
    assert abs(float(row.split()[2]) - seconds) < 0.1, row


def test_11_a_rotated_track_reads_the_same_with_every_reader(clip_factory, tmp_path):
    import struct

    from v2v_lab import score
    from v2v_lab.media.reader import iter_frames, open_video

    upright_frames = moving_frames(24, 96, 64)
    plain = Path(clip_factory("to_rotate.mp4", upright_frames))
    data = bytearray(plain.read_bytes())
    matrix = data.index(b"tkhd") + 4 + 40
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # 90° clockwise
    rotated = tmp_path / "rotated.mp4"
    rotated.write_bytes(bytes(data))
    shown = Path(clip_factory("shown.mp4", [np.ascontiguousarray(np.rot90(f, -1)) for f in upright_frames]))
    info = probe_video(rotated)
    assert (info.width, info.height, info.rotation) == (64, 96, 270)
    for backend in ("auto", "pyav"):
        frames = open_video(rotated, (32, 48), backend=backend).get_frames([0, 5])
        assert frames.shape == (2, 48, 32, 3)
    assert next(iter_frames(rotated)).shape == (96, 64, 3)
    # The rotated file and the same pictures stored upright are one video to every reader.
    for a, b in ((rotated, shown), (shown, rotated)):
        value = score(str(a), str(b), ["ssim_source"], frames=4, size=64).values["ssim_source"]
        assert value > 0.95, (a.name, b.name, value)


# -- the key ----------------------------------------------------------------------------------------
def test_12_a_spec_file_cannot_send_a_paid_key_elsewhere(mlflow_store, tmp_path, monkeypatch, capsys):
    listener = Recorder()
    try:
        monkeypatch.setenv("RUNWAYML_API_SECRET", KEY)
        spec = write_spec(tmp_path, experiment="redirect", provider="runway",
                          base_url=f"http://127.0.0.1:{listener.port}")
        line_no = next(i for i, line in enumerate(spec.read_text().splitlines(), 1) if line.startswith("base_url"))
        assert main(["sweep", str(spec), "--yes", "--no-progress"]) == 2
        err = one_line(capsys.readouterr().err)
        assert err.startswith(f"error: base_url (line {line_no})") and "--base-url" in err
        # Named by the user, but plain http off loopback: refused too.
        spec = write_spec(tmp_path, experiment="redirect", provider="runway")
        assert main(["sweep", str(spec), "--yes", "--no-progress", "--base-url", "http://example.com"]) == 2
        assert "https" in one_line(capsys.readouterr().err)
        monkeypatch.setenv("V2V_LAB_BASE_URL", "http://10.1.2.3:8080")
        assert main(["generate", str(DEMO), "--prompt", "x", "--provider", "runway", "--yes",
                     "--out", str(tmp_path / "o.mp4")]) == 2
        assert "V2V_LAB_BASE_URL" in one_line(capsys.readouterr().err)
        time.sleep(0.3)
        assert listener.received == b"", "the key was sent to a host the user did not name"
    finally:
        listener.close()
    assert KEY not in capsys.readouterr().err


# -- bad input that ended in a traceback ---------------------------------------------------------------
def test_13_a_yaml_alias_bomb_is_refused_quickly(emu, mlflow_store, tmp_path):
    levels = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    bomb = "experiment: bomb\nvideos: [x.mp4]\nprompts: [x]\na: &a [x, x, x, x, x, x, x, x, x]\n" + levels
    (tmp_path / "bomb.yaml").write_text(bomb)
    assert len(bomb) < 700
    start = time.monotonic()
    result = cli("sweep", str(tmp_path / "bomb.yaml"), env={"V2V_LAB_BASE_URL": emu.base_url})
    assert result.returncode == 2 and "alias" in one_line(result.stderr)
    assert time.monotonic() - start < 20
    # One level less is a small document with unknown keys: its error message stays short.
    (tmp_path / "wide.yaml").write_text(bomb.rsplit("i: &i", 1)[0])
    result = cli("sweep", str(tmp_path / "wide.yaml"))
    assert result.returncode == 2 and len(one_line(result.stderr)) < 600


def test_14_bad_inputs_that_were_tracebacks_are_one_line(emu, mlflow_store, tmp_path, monkeypatch, capsys):
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    cases = [
        ("prompt with a lone surrogate", {"prompts": ["neon \ud800 city"]}, "prompts[0]"),
        ("binary prompt file", {"prompts": {"file": str(tmp_path / "binary.txt")}}, "prompts.file"),
        ("template {}", {"prompts": {"template": "a {} city", "vars": {}}}, "prompts"),
        ("template {a!z}", {"prompts": {"template": "a {a!z} city", "vars": {"a": ["neon"]}}}, "prompts"),
        ("spec key base_dir", {"base_dir": "/"}, "base_dir"),
        ("seeds: []", {"seeds": []}, "seeds"),
        ("ratios: []", {"ratios": []}, "ratios"),
        ("references: []", {"references": []}, "references"),
    ]
    before = sum(emu.stats["requests"].values())
    for case, change, field in cases:
        spec = write_spec(tmp_path, experiment="bad14", **change)
        code = sweep(spec, emu)
        err = capsys.readouterr().err
        assert code == 2 and one_line(err).startswith(f"error: {field}"), (case, err)
    spec = write_spec(tmp_path, experiment="bad14")
    journal = Path(os.environ["V2V_LAB_HOME"]) / "journal.sqlite"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(b"this is not a database" * 100)
    assert sweep(spec, emu) == 2 and "journal" in one_line(capsys.readouterr().err)
    journal.unlink()
    for value in (KEY + "\n", "key_ünïcode", "key with spaces"):
        monkeypatch.setenv("RUNWAYML_API_SECRET", value)
        code = main(["sweep", str(spec), "--provider", "runway", "--yes", "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and "RUNWAYML_API_SECRET" in one_line(err) and value.strip() not in err
    monkeypatch.delenv("RUNWAYML_API_SECRET")
    for uri, word in (("sqlite:////sys/v2v/mlflow.db", "MLFLOW_TRACKING_URI"),
                      (f"http://127.0.0.1:{free_port()}", "MLFLOW_TRACKING_URI")):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        start = time.monotonic()
        code = sweep(spec, emu)
        assert code == 2 and word in one_line(capsys.readouterr().err) and time.monotonic() - start < 15, uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'ok.db'}")
    monkeypatch.setenv("V2V_LAB_HOME", "/sys/v2v-state")
    assert sweep(spec, emu) == 2 and "V2V_LAB_HOME" in one_line(capsys.readouterr().err)
    assert sum(emu.stats["requests"].values()) == before



def test_14b_disk_full_while_writing_is_one_line_and_loses_nothing(tmp_path):
    """The state folder on a 2 MB tmpfs (a private mount namespace): the output does not fit."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for the disk-full test")
    spec = write_spec(tmp_path, experiment="full", emulator={"render_scale": 0.5})
    store = tmp_path / "mlflow.db"
    with Emulator(render_scale=0.5) as e:
        script = (f"mount -t tmpfs -o size=400k tmpfs {tmp_path / 'small'} && "
                  f"V2V_LAB_HOME={tmp_path / 'small'} {CLI} sweep {spec} --no-progress")
        (tmp_path / "small").mkdir()
        result = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
                                                  "V2V_LAB_BASE_URL": e.base_url})
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode in (0, 1), result.stderr
        if result.returncode == 1:
            assert "space" in one_line(result.stderr).lower()
        else:
            assert "failed" in result.stdout and "No space left" in json.dumps(
                [r.data.tags.get("v2v.failure", "") for r in mlflow.MlflowClient(f"sqlite:///{store}").search_runs(
                    [mlflow.MlflowClient(f"sqlite:///{store}").get_experiment_by_name("full").experiment_id])])
        assert len(e.tasks()) == 1


def test_15_two_sweeps_starting_together_on_a_new_store_leave_it_usable(tmp_path):
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    with Emulator(render_scale=0.1) as e:
        procs = []
        for name in ("race_a", "race_b"):
            spec = write_spec(tmp_path, name=f"{name}.yaml", experiment=name)
            procs.append(subprocess.Popen([CLI, "sweep", str(spec), "--no-progress"], env={
                **os.environ, "MLFLOW_TRACKING_URI": store, "V2V_LAB_BASE_URL": e.base_url,
                "V2V_LAB_HOME": str(tmp_path / name)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], results
    client = mlflow.MlflowClient(store)
    for name in ("race_a", "race_b"):
        exp = client.get_experiment_by_name(name)
        assert len(client.search_runs([exp.experiment_id], "tags.`v2v.kind` = 'cell'")) == 1


def test_16_the_emulator_answers_400_to_bodies_it_cannot_take(emu):
    import httpx

    headers = {"Authorization": "Bearer " + KEY, "X-Runway-Version": "2024-11-06",
               "Content-Type": "application/json"}
    deep = "[" * 1000 + "]" * 1000
    for path, body in (("/v1/video_to_video", deep), ("/v1/organization/usage", deep),
                       ("/v1/organization/usage", "[1, 2]"), ("/v1/organization/usage", '"text"'),
                       ("/v1/uploads", deep), ("/v1/uploads", "[]")):
        response = httpx.post(emu.base_url + path, content=body, headers=headers)
        assert response.status_code == 400, (path, body[:20], response.text)
        assert "error" in response.json()


def test_17_runs_shows_terminal_escapes_escaped(emu, mlflow_store, tmp_path, capsys):
    spec = write_spec(tmp_path, experiment="escapes", prompts=["\x1b[2J\x1b[31mneon city"])
    assert sweep(spec, emu) == 0
    capsys.readouterr()
    result = cli("runs", "escapes")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\\x1b[31mneon" in result.stdout
    assert yaml is not None
