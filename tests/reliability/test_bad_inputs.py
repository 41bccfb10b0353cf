"""A corpus of bad specs and media. Each is stopped before anything is sent: exit code 2, one line
naming the field, and the emulator counts zero creates (and, for most, zero requests at all)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

from v2v_lab.cli import main
from v2v_lab.emulator import Emulator
from v2v_lab.media.writer import write_mp4

from ..conftest import DEMO, ROOT
from .conftest import report

BASE = {"experiment": "bad", "provider": "local", "videos": [str(DEMO)], "models": ["gen4_aleph"],
        "prompts": ["neon city"], "seeds": [1], "ratios": ["1280:720"], "emulator": {"render_scale": 0.1}}
EMOJI_PROMPT = "\U0001f3ac" * 501  # 501 characters, 1002 UTF-16 units: over the 1000 limit


def _media(folder):
    """Bad and awkward files, made once."""
    m = {}
    m["text_mp4"] = folder / "notes.mp4"
    m["text_mp4"].write_text("this is not a video\n" * 50)
    data = DEMO.read_bytes()
    m["truncated"] = folder / "truncated.mp4"
    m["truncated"].write_bytes(data[: len(data) // 5])
    m["empty"] = folder / "empty.mp4"
    m["empty"].write_bytes(b"")
    m["huge"] = folder / "huge.mp4"  # a real clip padded past aleph2's 16 MB
    shutil.copy(DEMO, m["huge"])
    with open(m["huge"], "ab") as fh:
        fh.write(b"\0" * 17_000_000)
    frames = [np.full((64, 64, 3), (i * 7) % 255, np.uint8) for i in range(62)]
    m["long"] = folder / "long_31s.mp4"
    write_mp4(m["long"], frames, 2.0)  # 31 s, over the 30 s limit
    m["short"] = folder / "short.mp4"
    write_mp4(m["short"], frames[:6], 24.0)  # 0.25 s, under gen4_aleph's 1 s
    m["text_png"] = folder / "ref.png"
    m["text_png"].write_text("not an image")
    m["ref_ok"] = folder / "ok.png"
    import cv2

    cv2.imwrite(str(m["ref_ok"]), np.zeros((64, 64, 3), np.uint8))
    return m


# (case id, spec changes or a raw YAML text, environment, the field the one line must name)
def _cases(m):
    return [
        ("video: text file named .mp4", {"videos": [str(m["text_mp4"])]}, {}, "video"),
        ("video: truncated mp4", {"videos": [str(m["truncated"])]}, {}, "video"),
        ("video: empty file", {"videos": [str(m["empty"])]}, {}, "video"),
        ("video: missing file", {"videos": [str(m["empty"]) + ".gone"]}, {}, "video"),
        ("video: over the model's byte limit", {"videos": [str(m["huge"])], "models": ["aleph2"], "ratios": [None]},
         {}, "video"),
        ("video: over the duration limit", {"videos": [str(m["long"])]}, {}, "video"),
        ("video: under the minimum duration", {"videos": [str(m["short"])]}, {}, "video"),
        ("videos: a glob matching nothing", {"videos": ["/nowhere/*.mp4"]}, {}, "videos"),
        ("ratio the model does not take", {"models": ["gen3a_turbo"], "ratios": ["1280:720"]}, {}, "ratio"),
        ("ratio: malformed", {"ratios": ["wide"]}, {}, "ratio"),
        ("seed -1", {"seeds": [-1]}, {}, "seed"),
        ("seed 4294967296", {"seeds": [4294967296]}, {}, "seed"),
        ("seed 'abc'", {"seeds": ["abc"]}, {}, "seed"),
        ("seeds: count 0", {"seeds": {"count": 0}}, {}, "seeds"),
        ("prompt: empty", {"prompts": [""]}, {}, "prompt"),
        ("prompt: over the limit in UTF-16 units (emoji)", {"prompts": [EMOJI_PROMPT]}, {}, "prompt"),
        ("prompts: a file that does not exist", {"prompts": {"file": "nope.txt"}}, {}, "prompts.file"),
        ("prompts: template variable without a list", {"prompts": {"template": "{a} as {b}", "vars": {"a": ["x"]}}},
         {}, "prompts"),
        ("references: a list where one path belongs", {"references": [[str(m["ref_ok"]), str(m["ref_ok"])]]},
         {}, "references"),
        ("references: with a model that takes none", {"models": ["gen3a_turbo"], "ratios": ["1280:768"],
                                                      "references": [str(m["ref_ok"])]}, {}, "references"),
        ("references: not an image", {"references": [str(m["text_png"])]}, {}, "reference"),
        ("model: unknown", {"models": ["gen5_dream"]}, {}, "model"),
        ("model: gen3a_turbo on the runway provider", {"provider": "runway", "models": ["gen3a_turbo"],
                                                       "ratios": ["1280:768"]},
         {"RUNWAYML_API_SECRET": "key_" + "0" * 60}, "model"),
        ("provider: no key for a paid provider", {"provider": "runway"}, {}, "api_key"),
        ("provider: unknown", {"provider": "openai"}, {}, "provider"),
        ("video: plain http URL for a real provider", {"provider": "runway", "videos": ["http://example.com/a.mp4"]},
         {"RUNWAYML_API_SECRET": "key_" + "0" * 60}, "video"),
        ("spec: malformed YAML", "experiment: bad\nvideos: [a.mp4\nprompts: x\n", {}, "spec"),
        ("spec: unknown key", {"sedes": [1]}, {}, "sedes"),
        ("spec: not a mapping", "- just\n- a list\n", {}, "spec"),
        ("concurrency: 0", {"concurrency": 0}, {}, "concurrency"),
        ("repeats: 101", {"repeats": 101}, {}, "repeats"),
        ("budget: negative", {"budget": {"max_credits": -5}}, {}, "budget.max_credits"),
        ("budget: estimate over max_credits", {"budget": {"max_credits": 10}}, {}, "budget.max_credits"),
        ("scoring: frames 1", {"scoring": {"frames": 1}}, {}, "scoring.frames"),
        ("scoring: unknown metric", {"scoring": {"metrics": ["psnr_magic"]}}, {}, "metrics"),
        ("emulator: render_scale 0", {"emulator": {"render_scale": 0}}, {}, "emulator.render_scale"),
        ("experiment: empty name", {"experiment": ""}, {}, "experiment"),
        ("content_moderation: unknown value", {"content_moderation": {"publicFigureThreshold": "never"}}, {},
         "content_moderation"),
    ]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return _media(tmp_path_factory.mktemp("bad_media"))


def test_every_bad_input_exits_2_with_one_line_and_sends_nothing(media, mlflow_store, tmp_path, capsys,
                                                                  monkeypatch):
    results = []
    with Emulator(render_scale=0.1) as emu:
        for case, change, env, field in _cases(media):
            for var in ("RUNWAYML_API_SECRET", "COMETAPI_API_KEY"):
                monkeypatch.delenv(var, raising=False)
            for var, value in env.items():
                monkeypatch.setenv(var, value)
            path = tmp_path / "bad.yaml"
            if isinstance(change, str):
                path.write_text(change)
            else:
                path.write_text(yaml.safe_dump({**BASE, **change}, allow_unicode=True))
            before = dict(emu.stats["requests"])
            code = main(["sweep", str(path), "--yes", "--no-progress", "--base-url", emu.base_url])
            out, err = capsys.readouterr()
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2, (case, out, err)
            assert len(lines) == 1, (case, lines)
            assert field in lines[0], (case, field, lines[0])
            assert emu.stats["requests"].get("create", 0) == 0, case
            results.append({"case": case, "message": lines[0],
                            "requests": sum(emu.stats["requests"].values()) - sum(before.values())})
        total_requests = sum(emu.stats["requests"].values())
    # Every case ran, and the README's guarantee states how many there are.
    assert len(results) == len(_cases(media))
    claimed = re.search(r"bad input \((\d+) cases", (ROOT / "README.md").read_text())
    assert claimed and int(claimed.group(1)) == len(results) + N_GENERATE_CASES, claimed
    report("bad_inputs", {"cases": len(results), "creates": 0, "requests_caused": total_requests,
                          "messages": {r["case"]: r["message"] for r in results}})


def _generate_cases(ref: str) -> list[tuple[list[str], str]]:
    return [(["--prompt", "x", "--reference", ref, "--reference", ref], "references"),
            (["--prompt", "x", "--model", "aleph2", "--reference", ref], "references"),
            (["--prompt", "x", "--model", "nope"], "model"),
            (["--prompt", "x", "--seed", "-1"], "seed"),
            (["--prompt", "x", "--seed", "abc"], "seed"),
            (["--prompt", "x", "--seed", "4294967296"], "seed"),
            (["--prompt", EMOJI_PROMPT], "prompt"),
            (["--prompt", "x", "--model", "gen3a_turbo", "--ratio", "1280:720"], "ratio")]


N_GENERATE_CASES = len(_generate_cases("ref.png"))


def test_generate_rejects_bad_seeds_and_prompts_before_sending(media, mlflow_store, capsys, tmp_path):
    ref = str(media["ref_ok"])
    with Emulator(render_scale=0.1) as emu:
        for args, field in _generate_cases(ref):
            code = main(["generate", str(DEMO), *args, "--base-url", emu.base_url, "--out", str(tmp_path / "o.mp4")])
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1 and field in err[0], (args, err)
        assert sum(emu.stats["requests"].values()) == 0
