"""The proof of the proofs: break each guarantee of the README's reliability table on purpose and
see the test that proves it fail.

Each sabotage is one text replacement in one file, applied to a temporary copy of the checkout
(never to the checkout itself); the row's named tests (path::name, never a whole file) then run
against the copy (PYTHONPATH points every process, console scripts included, at the copy's
package), one at a time (-n 0), and their JUnit XML is read. A row is

    CAUGHT  a named test failed by an assertion (and none errored): the only pass;
    MISSED  every named test passed under the sabotage;
    BROKEN  a named test errored (setup, collection), timed out, was skipped, is missing, or crashed
            on something other than an assertion: the sabotage broke a precondition, not the
            guarantee, or the test is unreliable;
    STALE   the text to break no longer occurs exactly once: the code moved, the row must follow.

    python bench/sabotage.py                # every sabotage, a table at the end
    python bench/sabotage.py retry key      # only those whose name contains one of the words
    python bench/sabotage.py --only budget  # only this one (repeatable)
    python bench/sabotage.py --list

Exit status 0 only when every chosen sabotage is CAUGHT.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sabotage:
    name: str  # short handle for the command line
    row: str  # the reliability-table row it breaks
    what: str  # the sabotage, as a person says it
    path: str  # file, relative to the checkout
    old: str
    new: str
    tests: tuple[str, ...]
    also: tuple[tuple[str, str, str], ...] = ()  # more (path, old, new) changes that belong to it


RUNNER = "v2v_lab/sweeps/runner.py"
CELL = "v2v_lab/sweeps/cell.py"
WRITER = "v2v_lab/tracking/writer.py"
MONEY = "tests/reliability/test_money_and_keys.py::"
ATTACKS = "tests/reliability/test_emulator_attacks.py::test_the_emulator_refuses_every_attack"
SABOTAGES = [
    Sabotage("retry", "faults: INTERNAL retried within max_task_retries",
             "switch off the INTERNAL retry", CELL,
             "    return task.status is TaskStatus.FAILED and same_seed and attempts <= limit",
             "    return False",
             ("tests/reliability/test_faults.py::test_a_hundred_cells_under_faults_end_recorded_and_never_double_billed",)),
    Sabotage("second-task", "faults: no second task unless the first definitely failed",
             "retry every failed task, SAFETY included", CELL,
             "    return task.status is TaskStatus.FAILED and same_seed and attempts <= limit",
             "    return task.status is TaskStatus.FAILED and attempts <= limit",
             ("tests/reliability/test_faults.py::test_a_hundred_cells_under_faults_end_recorded_and_never_double_billed",)),
    Sabotage("safety-output-seed", "what may be tried again is one table",
             "resend SAFETY.OUTPUT with the same seed", "v2v_lab/api/retry_policy.py",
             '    ("SAFETY.OUTPUT", Rule(_NEW, ', '    ("SAFETY.OUTPUT", Rule(_SAME, ',
             ("tests/test_retry_policy.py::test_a_safety_output_cell_gets_no_second_task_and_retry_failed_does_not_resend_it",)),
    Sabotage("resend", "a create is never sent twice silently",
             "let a create whose answer was lost be resent", "v2v_lab/api/client.py",
             "                if transport_rule(Transport.NO_ANSWER, create=create).task_may_exist:",
             "                if False:",
             ("tests/test_client.py::test_create_is_never_resent_when_its_outcome_is_unknown",)),
    Sabotage("unknown-resent", "unknown cells are resent only with --retry-unknown",
             "resend unknown cells on every rerun", RUNNER,
             'groups[Group.NEW if self.opts.retry_unknown else Group.UNKNOWN].append(cell)',
             'groups[Group.NEW].append(cell)',
             ("tests/reliability/test_faults.py::test_an_unknown_create_is_reported_and_resent_only_when_asked",)),
    Sabotage("journal", "kill -9 at any moment: created tasks taken up by id",
             "skip the journal write of the task id", CELL,
             'journal.set(exp, cell.key, JournalState.CREATED, task_id=created.id)  # durable before anything else',
             'pass',
             ("tests/reliability/test_crash_resume.py::test_ten_kills_and_reruns_lose_nothing_and_pay_nothing_twice",)),
    Sabotage("one-sweep", "one sweep per experiment at a time",
             "take no lock", "v2v_lab/sweeps/journal.py",
             "        if fcntl is None:  # pragma: no cover - Windows: no flock; the journal still guards resumes\n"
             "            return",
             "        return",
             ("tests/test_sweep.py::test_a_second_sweep_of_the_same_experiment_is_refused_while_one_runs",)),
    Sabotage("bad-seed", "bad input stops with exit 2, nothing sent",
             "accept any integer seed", "v2v_lab/api/validation.py",
             "    if not spec.seed_min <= seed <= spec.seed_max:",
             "    if False:",
             ("tests/reliability/test_bad_inputs.py::test_every_bad_input_exits_2_with_one_line_and_sends_nothing",
              "tests/reliability/test_bad_inputs.py::test_generate_rejects_bad_seeds_and_prompts_before_sending")),
    Sabotage("budget", "over budget, balance or daily limit: exit 2, zero tasks",
             "ignore the credit cap", "v2v_lab/sweeps/budget.py",
             "    if cap is not None and credits + committed > cap:",
             "    if False:",
             ("tests/test_sweep.py::test_budget_and_balance_refusals",)),
    Sabotage("key-in-log", "a key never reaches logs or outputs",
             "let the key into a log line", "v2v_lab/api/client.py",
             '        return self.provider.auth_headers(self._key.reveal())',
             '        __import__("logging").getLogger("v2v_lab").warning("auth %s", self._key.reveal())\n'
             '        return self.provider.auth_headers(self._key.reveal())',
             ("tests/reliability/test_secrets.py::test_a_canary_key_goes_nowhere",)),
    Sabotage("forged-signature", "the emulator refuses forged signatures",
             "serve outputs whatever their signature", "v2v_lab/emulator/files.py",
             '        if not hmac.compare_digest(want, request.query_params.get("sig", "")):\n'
             '            return _error(403, "Invalid signature")\n        if time.time() > expires:',
             '        if time.time() > expires:',
             ("tests/reliability/test_emulator_attacks.py::test_the_emulator_refuses_every_attack",)),
    Sabotage("traversal", "the emulator refuses path traversal",
             "store an upload under the file name the client gave (unsanitised)", "v2v_lab/emulator/files.py",
             'safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:100] or "file"',
             "safe_name = filename",
             ("tests/reliability/test_emulator_attacks.py::test_the_emulator_refuses_every_attack",),
             also=(("v2v_lab/emulator/files.py",
                    'path = self.state.workdir / "uploads" / upload_id / "data"  # never a client-given name',
                    'path = self.state.workdir / "uploads" / upload_id / up.filename'),)),
    Sabotage("in-flight", "16 cells in flight plus a second writer leave every run complete",
             "cap the sweep at 4 in flight", RUNNER,
             "        return limit, asyncio.Semaphore(limit), per_model",
             "        return limit, asyncio.Semaphore(min(limit, 4)), per_model",
             ("tests/reliability/test_store_load.py::test_sixteen_in_flight_and_a_second_writer_leave_every_run_complete",)),
    Sabotage("poster", "scoring failures are recorded runs, never crashes",
             "let a poster failure escape", CELL,
             "        except (V2VError, OSError, ValueError) as exc:  # an output that is not a video is recorded, never fatal",
             "        except KeyboardInterrupt as exc:",
             ("tests/test_sweep.py::test_an_output_that_is_not_a_video_is_recorded_never_a_crash",)),
    Sabotage("duplicates", "no duplicate billing from spec duplicates",
             "stop merging duplicate cells", "v2v_lab/sweeps/plan.py",
             "        if cell.key not in seen:\n            seen.add(cell.key)\n            unique.append(cell)",
             "        unique.append(cell)",
             ("tests/reliability/test_money_and_keys.py::test_1_duplicate_entries_are_merged_and_paid_once",)),
    Sabotage("store-lock", "no duplicate billing from a second process on the same store",
             "lock only the state folder, not beside the store", "v2v_lab/sweeps/journal.py",
             "[self.path.parent / \"locks\"] + ([store_locks] if store_locks else [])",
             "[self.path.parent / \"locks\"]",
             ("tests/reliability/test_money_and_keys.py::"
              "test_2_a_second_process_on_the_same_store_is_refused_whatever_its_state_folder",)),
    Sabotage("seeds", "a rerun redoes nothing: random seeds come back from the store",
             "forget the seeds the store recorded", RUNNER,
             "            recorded = recorded_seeds(spec.experiment, spec.seeds.random, options.tracking_uri)",
             "            recorded = None",
             ("tests/reliability/test_money_and_keys.py::test_3_random_seeds_are_recovered_from_the_store_when_the_state_folder_is_lost",)),
    Sabotage("unasked", "nothing is spent unasked",
             "spend without asking on a terminal", "v2v_lab/sweeps/budget.py",
             "    if confirm is not None:\n        ok = confirm(question)",
             "    if True:\n        ok = True",
             ("tests/reliability/test_money_and_keys.py::test_6_generate_on_a_paid_provider_asks_first",)),
    Sabotage("duration", "clips are priced by their real length",
             "price by the container's frame count alone", "v2v_lab/media/probe.py",
             "    duration = max([count / fps, *(x for x in spans if x == x and 0 < x < 1e7)])",
             "    duration = count / fps",
             ("tests/reliability/test_money_and_keys.py::test_10_sparse_timestamps_are_priced_by_their_real_length",)),
    Sabotage("spec-base-url", "a key never leaves for a host the user did not name",
             "let a spec file's base_url redirect a paid key", RUNNER,
             "        provider.check_spec_base_url(spec.base_url, spec.line_of(\"base_url\"))",
             "        pass",
             ("tests/reliability/test_money_and_keys.py::test_12_a_spec_file_cannot_send_a_paid_key_elsewhere",)),
    Sabotage("alias-bomb", "an alias bomb stops with one line",
             "no bound on the spec's expanded size", "v2v_lab/sweeps/spec.py",
             "MAX_SPEC_NODES = 200_000", "MAX_SPEC_NODES = 10**12",
             ("tests/reliability/test_money_and_keys.py::test_13_a_yaml_alias_bomb_is_refused_quickly",)),
    Sabotage("dry-run-journal-only", "a dry run decides done as a run does, and writes nothing",
             "decide a dry run's done cells from the journal alone", RUNNER,
             "        done_in_mlflow = {} if self.opts.force else recorded_done_cells(self.spec.experiment, store)",
             "        done_in_mlflow = {}",
             ("tests/test_sweep.py::test_a_dry_run_decides_done_as_a_run_does_and_writes_nothing",)),
    Sabotage("retry-forever", "each retried request gives up after its tries",
             "give every retried request a hundred more tries", "v2v_lab/api/_retry.py",
             "    tries = policy.max_retries + 1 if tries is None else tries",
             "    tries = policy.max_retries + 101 if tries is None else tries + 100",
             ("tests/test_client.py::test_each_retried_request_gives_up_after_its_tries_with_its_own_error",)),
    Sabotage("readme-door", "every README command runs as typed",
             "the emulator command crashes on start", "v2v_lab/cli.py",
             "def cmd_emulator(args: argparse.Namespace) -> int:\n",
             "def cmd_emulator(args: argparse.Namespace) -> int:\n    raise RuntimeError('boom')\n",
             ("tests/test_doors.py::test_the_other_readme_commands_run_as_typed",)),
    Sabotage("rescore-twice", "rescore: a rerun after kill -9 writes each value once",
             "rescore every run, whether it has the value or not", "v2v_lab/rescoring.py",
             "        keys = {m: k for m, k in keys.items() if k not in cell.metrics}",
             "        keys = dict(keys)",
             ("tests/test_rescore.py::test_a_kill_mid_rescore_then_a_rerun_writes_each_value_once",)),
    Sabotage("rescore-versions", "rescore: a value measured another way never takes the original's name",
             "write every rescored value under the metric's own name", "v2v_lab/rescoring.py",
             "    key = metric if same_sampling else",
             "    key = metric if True else",
             ("tests/test_rescore.py::test_a_changed_scoring_size_goes_under_its_own_name",)),
    Sabotage("motion-mean", "validity: motion_epe ranks every temporal damage above every appearance edit",
             "pool motion_epe's endpoint errors by the mean, not the median", "v2v_lab/metrics/motion_epe.py",
             "    return float(np.median(np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)))",
             "    return float(np.mean(np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)))",
             ("tests/test_validity.py::test_motion_epe_is_worse_under_every_temporal_damage_than_any_appearance_edit",)),
    Sabotage("structure-grey", "validity: structure ranks every appearance edit above every structural damage",
             "compare SSIM of the frames instead of their gradient maps", "v2v_lab/metrics/structure.py",
             "    series = parallel_map(lambda s, o: correlation(s, gradient_energy(o)), source, frames.out_a)",
             "    from ._ssim import ssim\n    series = [max(0.0, ssim(a, b)) for a, b in zip(frames.src_a, frames.out_a)]",
             ("tests/test_validity.py::test_structure_ranks_every_appearance_edit_above_every_structural_damage",)),
    Sabotage("structure-v1", "validity: structure keeps a stylisation 0.1 above a sigma-3 blur, 0.4 above any damage",
             "go back to version 1: the gradient magnitude after a sigma-1 Gaussian", "v2v_lab/metrics/structure.py",
             "    return energy[_BORDER:-_BORDER, _BORDER:-_BORDER]",
             "    return cv2.sqrt(energy)[_BORDER:-_BORDER, _BORDER:-_BORDER]",
             ("tests/test_validity.py::test_structure_keeps_a_stylisation_above_a_milder_blur_on_both_clips",
              "tests/test_validity.py::test_structure_ranks_every_appearance_edit_above_every_structural_damage"),
             also=(("v2v_lab/metrics/structure.py", "PRESMOOTH_SIGMA = 0.5", "PRESMOOTH_SIGMA = 1.0"),)),
    Sabotage("structure-unversioned", "rescore: a value of structure's version 1 never takes version 2's name",
             "change structure's definition without changing its params", "v2v_lab/metrics/structure.py",
             'PARAMS = {"version": 2, "feature": "colour gradient energy (sobel 3x3 per rgb channel, squared, summed)",\n'
             '          "presmooth_sigma": PRESMOOTH_SIGMA,',
             'PARAMS = {"feature": "colour gradient magnitude (sobel 3x3 per rgb channel)",\n'
             '          "presmooth_sigma": 1.0,',
             ("tests/test_rescore.py::test_runs_scored_with_structure_version_1_keep_it_and_get_version_2_under_its_own_name",)),
    Sabotage("ratings-later", "judgments: each is in the store when the choice returns",
             "keep judgments in memory and save them when the last pair is rated",
             "v2v_lab/dashboard/rate_view.py",
             "        self.ratings_log.save(judgment)  # durable before anything else changes\n",
             "        self._unsaved = [*getattr(self, '_unsaved', []), judgment]\n"
             "        if not self._queue:\n"
             "            for unsaved in self._unsaved:\n"
             "                self.ratings_log.save(unsaved)\n",
             ("tests/test_rating.py::test_raters_in_two_processes_at_once_lose_nothing_and_a_killed_one_keeps_its_choices",
              "tests/test_rating.py::test_rate_view_saves_each_choice_at_once_resumes_and_never_repeats")),
    Sabotage("videos-in-state", "judgments: the rating page's videos go by address, not in the widget state",
             "send every video as bytes in the widget state", "v2v_lab/dashboard/rate_view.py",
             '        elif self.videos == "served":\n            self._set(side, media_server().url(video), b"")',
             '        elif self.videos == "served":\n            self._set(side, "", video.read_bytes())',
             ("tests/test_rating.py::test_videos_go_by_address_from_a_loopback_server_that_serves_only_them",)),
    Sabotage("order-likely-loose", "judgments: equal groups are never called settled",
             "settle once the current order is 60% likely", "v2v_lab/rating/active.py",
             "ORDER_LEVEL = 0.99", "ORDER_LEVEL = 0.6",
             ("tests/test_rating.py::test_the_order_settles_when_it_is_very_likely_and_coin_flips_between_equal_groups_never_settle",)),
    Sabotage("stale-click", "judgments: a double click never judges the next pair",
             "accept a choice whatever pair it was made on", "v2v_lab/dashboard/rate_view.py",
             'content.get("pair") == self.pair_id and self._current is not None',
             "self._current is not None",
             ("tests/test_rating.py::test_a_stale_click_never_judges_the_next_pair_and_bad_input_is_refused",)),
    Sabotage("agreement-direction", "judgments: metric agreement reads each metric in its direction",
             "count higher as better for every metric", "v2v_lab/rating/analysis.py",
             "            win = metric.goodness(values.reindex(df.loc[idx, \"winner\"]).to_numpy(dtype=float))\n"
             "            lose = metric.goodness(values.reindex(loser.loc[idx]).to_numpy(dtype=float))",
             "            win = values.reindex(df.loc[idx, \"winner\"]).to_numpy(dtype=float)\n"
             "            lose = values.reindex(loser.loc[idx]).to_numpy(dtype=float)",
             ("tests/test_rating.py::test_metric_agreement_uses_the_direction_and_counts_only_decided_pairs",)),
    Sabotage("claims", "team: several processes on one ledger create each cell once",
             "let every process take every cell, held or not", "v2v_lab/sweeps/ledger.py",
             "\"WHERE claims.lease_until < now() OR claims.owner = EXCLUDED.owner RETURNING owner\",",
             "\"RETURNING owner\",",
             ("tests/test_team.py::test_three_machines_share_one_spec_and_one_killed_changes_nothing",)),
    Sabotage("shared-slots", "team: the account's concurrency holds across processes",
             "count each process's tasks in flight alone", "v2v_lab/sweeps/ledger.py",
             "            if cur.fetchone()[0] >= limit:",
             "            if cur.fetchone()[0] >= 10**6:",
             ("tests/test_team.py::test_three_machines_share_one_spec_and_one_killed_changes_nothing",)),
    Sabotage("takeover-relog", "team: a cell taken over is never logged twice",
             "log a taken-over cell again even when its run is complete", "v2v_lab/sweeps/runner.py",
             "                if logged:",
             "                if False:",
             ("tests/test_team.py::test_a_cell_logged_by_a_process_killed_before_the_ledger_heard_is_not_logged_again",)),
    Sabotage("server-lease", "a shared tracking server never pays twice",
             "take the store's lease without looking at anyone else's", "v2v_lab/tracking/lease.py",
             "        while others := self._others():",
             "        while others := []:",
             ("tests/reliability/test_round2_stores.py::test_1_a_second_process_on_one_tracking_server_is_refused_before_it_sends",
              "tests/reliability/test_round2_stores.py::test_1_two_processes_started_together_on_one_tracking_server_pay_once")),
    Sabotage("real-path-lock", "one local store reached by two names is one store",
             "lock beside the store's name as given, symlinks and all", "v2v_lab/tracking/store.py",
             "    path = path.resolve()\n    return path.parent / f\"{path.name}.v2v-locks\"",
             "    return path.parent / f\"{path.name}.v2v-locks\"",
             ("tests/reliability/test_round2_stores.py::test_2_one_local_store_reached_through_a_symlink_is_one_store",)),
    Sabotage("ledger-seeds", "team: random seeds are drawn once per experiment, in the ledger",
             "let each process keep its own draw", "v2v_lab/sweeps/plan.py",
             "    if agree is not None:\n        drawn = agree(drawn)",
             "    if False:\n        drawn = agree(drawn)",
             ("tests/reliability/test_round2_ledger.py::test_3_random_seeds_on_a_ledger_are_drawn_once_and_shared",)),
    Sabotage("fenced-log", "team: a process whose claim was lost stands down before logging",
             "fence only the send step, as before", "v2v_lab/sweeps/ledger.py",
             "            if state is not JournalState.CREATED:\n                self._fence(cur, experiment, key)",
             "            if state is JournalState.SENDING:\n                self._fence(cur, experiment, key)",
             ("tests/reliability/test_round2_ledger.py::"
              "test_4_a_process_whose_claim_passed_on_while_it_was_stopped_does_not_log_the_cell_again",),
             also=((CELL, "    await asyncio.to_thread(s.journal.hold, s.experiment, cell.key)\n", ""),)),
    Sabotage("paid-by-id", "a paid output is never paid again",
             "pay again for a succeeded task whose output was not fetched, instead of taking it up by id", RUNNER,
             "        return Group.RESUME\n    return Group.MISSING",
             "        return Group.NEW\n    return Group.MISSING",
             ("tests/reliability/test_round2_money.py::test_5a_a_succeeded_task_whose_download_failed_is_fetched_again_by_id",
              "tests/reliability/test_round2_money.py::test_5b_an_output_lost_to_an_unwritable_folder_is_fetched_once_the_folder_is_fixed")),
    Sabotage("journal-steps", "the journal takes only the steps its state machine declares",
             "let the journal take any step", "v2v_lab/sweeps/journal.py",
             "            check_transition(key, JournalState(was[0]) if was else None, state)",
             "            pass",
             ("tests/test_journal_states.py::test_every_other_step_is_refused_naming_both_states",)),
    Sabotage("old-words", "the journal takes only the steps its state machine declares",
             "read an earlier version's 'succeeded' row as logged instead of paid", "v2v_lab/sweeps/states.py",
             '        return cls.PAID if value == "succeeded" else None',
             '        return cls.DONE if value == "succeeded" else None',
             ("tests/test_journal_states.py::test_a_journal_written_with_the_old_words_resumes_without_creating_anything",)),
    Sabotage("zero-price", "a catalog never prices a cell at nothing",
             "accept a price of 0 credits per second from a catalog file", "v2v_lab/api/catalog.py",
             "    credits_per_second: float = Field(gt=0)",
             "    credits_per_second: float = Field(ge=0)",
             ("tests/reliability/test_round2_money.py::test_6a_a_catalog_with_a_zero_nan_or_negative_price_or_length_is_refused",)),
    Sabotage("cell-limit", "a plan is counted before it is built",
             "build any plan, however many cells it multiplies to", "v2v_lab/sweeps/plan.py",
             "    if cells <= limit:\n        return",
             "    if True:\n        return",
             ("tests/reliability/test_round2_money.py::test_12b_the_cell_limit_is_stated_and_raised_by_V2V_LAB_MAX_CELLS",
              "tests/reliability/test_round2_money.py::test_12a_a_plan_too_big_to_build_is_refused_before_it_is_built")),
    Sabotage("html-escape", "nothing from outside runs in a page (or reaches a terminal raw)",
             "put a prompt into SweepMonitor's tiles unescaped", "v2v_lab/dashboard/monitor.py",
             "{esc(cell.prompt[:30])}",
             "{cell.prompt[:30]}",
             ("tests/reliability/test_round2_pages.py::test_every_widget_holds_what_strangers_wrote_escaped",
              "tests/reliability/test_round2_pages.py::test_hostile_values_show_literally_and_never_run_in_chromium")),
    Sabotage("terminal-escape", "nothing from outside runs in a page (or reaches a terminal raw)",
             "print the sweep's progress lines with the experiment's escape codes raw", "v2v_lab/sweeps/progress.py",
             "desc=escape_controls(plan.spec.experiment)",
             "desc=plan.spec.experiment",
             ("tests/reliability/test_round2_inputs.py::test_11_escape_codes_in_a_prompt_or_a_name_never_reach_the_terminal",)),
    Sabotage("emulator-key-spec", "a key goes only to a host the user named, the emulator's included",
             "let a spec file's base_url have the emulator key", "v2v_lab/api/providers.py",
             "        if self.paid or self.key_from_env():", "        if self.paid:",
             ("tests/reliability/test_round2_keys.py::test_7_the_emulator_key_goes_only_to_a_host_the_user_named_and_plain_http_only_to_loopback",)),
    Sabotage("local-plain-http", "a key goes only to a host the user named, the emulator's included",
             "let provider local talk plain http off loopback", "v2v_lab/api/providers.py",
             '        if parts.scheme == "http" and not (is_loopback_host(parts.hostname)',
             '        if self.paid and parts.scheme == "http" and not (is_loopback_host(parts.hostname)',
             ("tests/reliability/test_round2_keys.py::test_7_the_emulator_key_goes_only_to_a_host_the_user_named_and_plain_http_only_to_loopback",)),
    Sabotage("url-masking", "a password in a store or ledger URL is never printed",
             "print URLs with their passwords", "v2v_lab/_net.py",
             '    return _USERINFO.sub(masked, text) if "@" in text else text', "    return text",
             ("tests/reliability/test_round2_keys.py::test_8_a_password_in_the_store_or_ledger_url_is_never_printed",)),
    Sabotage("mlflow-run-links", "a password in a store or ledger URL is never printed",
             "let MLflow print its View run lines (the tracking URI as typed)", "v2v_lab/tracking/store.py",
             '    os.environ[_QUIET_RUN_LINKS] = "true"', "    pass",
             ("tests/reliability/test_round2_keys.py::test_8_a_password_in_the_store_or_ledger_url_is_never_printed",)),
    Sabotage("received-redaction", "a key an endpoint echoes back is never stored",
             "store what the endpoint answers with the key in it", "v2v_lab/api/responses.py",
             "    return redact_received(response.json(), key)", "    return response.json()",
             ("tests/reliability/test_round2_keys.py::test_9_a_key_the_endpoint_echoes_back_is_never_stored",)),
    Sabotage("env-durations", "every environment variable is checked where it is read",
             "take a zero or negative duration from the environment", "v2v_lab/_env.py",
             "    if not (math.isfinite(value) and value > 0):", "    if not math.isfinite(value):",
             ("tests/reliability/test_round2_keys.py::test_16_bad_durations_in_the_environment_are_one_line_naming_the_variable",)),
    Sabotage("plugin-isolation", "a metric plugin's failure is recorded on that metric alone, never a crash",
             "let a metric's exception out of score()", "v2v_lab/metrics/_guard.py",
             '        raise MetricFailed(f"raised {type(value).__name__}: {_first_line(value)}") from None',
             "        raise value",
             ("tests/reliability/test_round2_interruptions.py::"
              "test_13_a_plugin_that_raises_or_returns_a_string_is_a_recorded_failure_on_that_metric_alone",)),
    Sabotage("plugin-time-limit", "a metric plugin that never returns is abandoned after its time limit",
             "wait for a metric however long it runs", "v2v_lab/metrics/_guard.py",
             "        return box.result(timeout=limit_s)",
             "        return box.result()",
             ("tests/reliability/test_round2_interruptions.py::"
              "test_13_a_plugin_that_never_returns_is_abandoned_after_its_time_limit",)),
    Sabotage("ctrl-c-forced", "Ctrl-C stops a sweep whatever blocks it (the spend question, a store away)",
             "never force a Ctrl-C the loop cannot take", "v2v_lab/_sync.py",
             "            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)",
             "            pass",
             ("tests/reliability/test_round2_interruptions.py::"
              "test_18_ctrl_c_at_the_spend_question_exits_130_in_one_line_and_sends_nothing",)),
    Sabotage("store-away-one-line", "a part of the store that stays away is one line within the retry window",
             "wait for the tracking server for ever", "v2v_lab/tracking/outage.py",
             "            if not err.transient or stopping() or _away_for(uri) >= retry_window_s():",
             "            if not err.transient or stopping():",
             ("tests/reliability/test_round2_interruptions.py::"
              "test_17_the_tracking_server_killed_and_left_down_is_one_line_and_ctrl_c_works",)),
    Sabotage("emulator-fields", "the emulator takes exactly the fields the SDK types for each model",
             "let the emulator take only the older models' fields", "v2v_lab/emulator/validate.py",
             "    return set(spec.wire_fields)",
             '    return {"model", "promptText", "seed", "ratio", "contentModeration", spec.video_field}',
             ("tests/test_doors.py::test_runwayml_sdk_creates_and_awaits_every_model_it_types",)),
    Sabotage("option-check", "a model's own fields are checked before anything is sent",
             "skip the per-model option checks", "v2v_lab/api/validation.py",
             "    check_options(req.options, spec)\n",
             "",
             ("tests/test_catalog.py::test_a_models_options_are_refused_by_field_before_anything_is_sent",)),
    Sabotage("options-in-every-key", "a study finished by an earlier version keeps its cell keys",
             "put the key version and options into every cell's key, set or not", "v2v_lab/sweeps/plan.py",
             "    if options:\n        payload |= {\"key_version\": CELL_KEY_VERSION, \"options\": dict(options)}",
             "    payload |= {\"key_version\": CELL_KEY_VERSION, \"options\": dict(options or {})}",
             ("tests/test_catalog.py::test_cells_finished_by_an_earlier_main_keep_their_keys",)),
    Sabotage("option-not-in-key", "cells that differ in a model's own field are cells of their own",
             "leave the options out of the cell key", "v2v_lab/sweeps/plan.py",
             "    if options:\n        payload |= {\"key_version\": CELL_KEY_VERSION, \"options\": dict(options)}",
             "    if False:\n        payload |= {\"key_version\": CELL_KEY_VERSION, \"options\": dict(options)}",
             ("tests/test_catalog.py::test_a_field_a_user_catalog_adds_changes_no_key_and_an_option_set_changes_the_cells_key",)),
    Sabotage("price-minimum", "a task is priced by its model's rules (aleph2's 56-credit minimum)",
             "drop the minimum per task from the one price function", "v2v_lab/api/pricing.py",
             "    credits = max(per_second * seconds, rules.minimum)",
             "    credits = per_second * seconds",
             ("tests/test_pricing.py::test_each_models_price_follows_its_rules",)),
    Sabotage("retry-after", "a rate-limited request waits what the server's Retry-After asks",
             "ignore Retry-After", "v2v_lab/api/_retry.py",
             "        if retry_after is not None and 0 <= retry_after <= 60:",
             "        if False:",
             ("tests/test_client.py::test_create_retries_429_and_refused_connections",)),
    Sabotage("server-cost", "a cell's credits are what the endpoint says the task cost",
             "record the estimate instead of the server's cost", "v2v_lab/sweeps/spend.py",
             "cell.model, task.id, task.cost,",
             "cell.model, task.id, None,",
             ("tests/reliability/test_server_costs.py::test_a_stale_catalog_never_charges_past_the_cap_and_a_higher_cap_takes_up_the_rest",
              "tests/reliability/test_server_costs.py::test_auto_duration_is_refunded_and_the_server_cost_is_what_the_run_records")),
    Sabotage("slot-lapse", "the account's caps hold across processes, a kill -9 included",
             "free a killed holder's slot when its lease lapses, its task still in flight", "v2v_lab/sweeps/ledger.py",
             "lease_until < now() AND (\"\n",
             "lease_until < now() AND (TRUE OR \"\n",
             ("tests/test_team.py::test_a_killed_holders_slot_stays_taken_while_its_task_is_in_flight_and_passes_to_whoever_takes_its_cell_up",)),
    Sabotage("cap-in-flight", "the server never charges past the cap, whatever the catalog says",
             "reserve every create whatever the cap", "v2v_lab/sweeps/charges.py",
             "    if cap is not None:\n        cur.execute(sql.committed",
             "    if False:\n        cur.execute(sql.committed",
             ("tests/reliability/test_server_costs.py::test_a_stale_catalog_never_charges_past_the_cap_and_a_higher_cap_takes_up_the_rest",)),
    Sabotage("price-line", "an endpoint price >5% off the catalog's is said and used",
             "never learn the endpoint's price from estimatedCost", "v2v_lab/sweeps/spend.py",
             "        self.price_ratio[cell.model] = ratio\n",
             "        return\n",
             ("tests/reliability/test_server_costs.py::test_a_stale_catalog_never_charges_past_the_cap_and_a_higher_cap_takes_up_the_rest",)),
    Sabotage("reservation-kept", "a create answered but never recorded stays counted against the cap",
             "count a reservation without its task id as nothing", "v2v_lab/sweeps/charges.py",
             'COMMITTED_SQL = "COALESCE(cost, estimated_cost, estimate)"',
             'COMMITTED_SQL = "CASE WHEN task_id IS NULL THEN 0 ELSE COALESCE(cost, estimated_cost, estimate) END"',
             ("tests/reliability/test_server_costs.py::test_a_kill_between_the_create_answer_and_its_record_keeps_the_reservation_counted",),
             also=(("v2v_lab/sweeps/charges.py", "        for value in (self.cost, self.estimated_cost):",
                    "        if self.task_id is None:\n            return 0.0\n"
                    "        for value in (self.cost, self.estimated_cost):"),)),
    Sabotage("auto-refund", "the emulator refunds the unused part of duration auto",
             "bill a finished task at its estimate", "v2v_lab/emulator/state.py",
             "    price = spec.estimate_credits(None, options, input_size=size, seconds=output_seconds)",
             "    price = spec.estimate_credits(None, options, input_size=size)",
             ("tests/reliability/test_server_costs.py::test_auto_duration_is_refunded_and_the_server_cost_is_what_the_run_records",)),
    Sabotage("cancel-running", "a task cancelled while RUNNING costs its full price, while PENDING nothing",
             "refund every cancel", "v2v_lab/emulator/state.py",
             "                    self._charge(task, math.ceil(round(task.estimated_credits, 6)))",
             "                    pass",
             ("tests/reliability/test_server_costs.py::test_the_emulator_charges_a_cancel_while_running_in_full_and_while_pending_nothing",)),
    Sabotage("emulator-prices", "`v2v-lab emulator --prices FILE` charges by the file's prices",
             "ignore --prices", "v2v_lab/cli.py",
             "        catalog = load_prices(args.prices)",
             "        catalog = None",
             ("tests/reliability/test_server_costs.py::test_the_emulator_command_charges_by_its_prices_file",)),
    # Rows of the README's table that had no sabotage (issue 30 point 7).
    Sabotage("empty-rerun", "nothing to do writes nothing; an interrupted parent ends KILLED and is linked",
             "start a parent run even when there is nothing to do", RUNNER,
             "            if not work:  # nothing to do writes nothing: no empty parent run per rerun",
             "            if False:  # nothing to do writes nothing: no empty parent run per rerun",
             (MONEY + "test_5_a_rerun_with_nothing_to_do_writes_nothing_and_an_interrupted_parent_is_ended",)),
    Sabotage("parent-killed", "nothing to do writes nothing; an interrupted parent ends KILLED and is linked",
             "leave a killed sweep's parent run RUNNING", WRITER,
             '                    self.client.set_terminated(run.info.run_id, status="KILLED")\n',
             "",
             (MONEY + "test_5_a_rerun_with_nothing_to_do_writes_nothing_and_an_interrupted_parent_is_ended",)),
    Sabotage("parent-linked", "nothing to do writes nothing; an interrupted parent ends KILLED and is linked",
             "end a killed sweep's parent run without linking the next one to it", WRITER,
             "                    ended.append(run.info.run_id)\n",
             "",
             (MONEY + "test_5_a_rerun_with_nothing_to_do_writes_nothing_and_an_interrupted_parent_is_ended",)),
    Sabotage("relog-from-kept", "a rerun redoes nothing: a done cell missing from another store is logged from its kept output",
             "pay again for a done cell another store lacks, instead of logging its kept output", RUNNER,
             "        return Group.FINISH\n    if row.state is JournalState.PAID",
             "        return Group.NEW\n    if row.state is JournalState.PAID",
             (MONEY + "test_4_a_done_cell_missing_from_another_store_is_logged_from_its_kept_output",)),
    Sabotage("store-restart", "team: PostgreSQL and the MLflow server restarted mid-sweep lose nothing",
             "give up on the tracking store at its first transient failure", "v2v_lab/tracking/outage.py",
             "            if not err.transient or stopping() or _away_for(uri) >= retry_window_s():",
             "            if True:",
             ("tests/test_team.py::test_parts_of_the_store_restarting_mid_sweep_lose_nothing_and_pay_nothing_twice",)),
    Sabotage("ledger-restart", "team: PostgreSQL and the MLflow server restarted mid-sweep lose nothing",
             "give up on the ledger at its first lost connection", "v2v_lab/sweeps/ledger.py",
             "                    if not patient or stopping() or now - self._away_since >= self.retry_s:",
             "                    if True:",
             ("tests/test_team.py::test_parts_of_the_store_restarting_mid_sweep_lose_nothing_and_pay_nothing_twice",)),
    Sabotage("store-init-lock", "two sweeps creating one store at once leave it usable",
             "create a new SQLite store without the lock across processes", "v2v_lab/tracking/store.py",
             "        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes, or the process dies",
             "        pass",
             (MONEY + "test_15_two_sweeps_starting_together_on_a_new_store_leave_it_usable",)),
    Sabotage("emulator-oversize", "the emulator refuses oversized uploads and data URIs",
             "take an upload or a data URI of any size", "v2v_lab/emulator/files.py",
             "        if len(data) > self.max_upload_bytes:",
             "        if False:",
             (ATTACKS,),
             also=(("v2v_lab/emulator/files.py", "        if int(length) > self.max_upload_bytes + 64 * 1024:",
                    "        if False:"),
                   ("v2v_lab/emulator/app.py", "        if len(payload) * 3 // 4 > limit:", "        if False:"))),
    Sabotage("emulator-off-loopback", "the emulator refuses URLs off loopback",
             "let the emulator fetch a URL off loopback", "v2v_lab/emulator/app.py",
             "        if not is_loopback_host(host):\n            raise Rejected(400",
             "        if False:\n            raise Rejected(400",
             (ATTACKS,)),
    Sabotage("emulator-wrong-key", "the emulator refuses wrong or missing keys",
             "let a keyed emulator take any key", "v2v_lab/emulator/app.py",
             "            if not token or (self.key is not None and not hmac.compare_digest(token, self.key)):",
             "            if not token:",
             (ATTACKS,)),
    Sabotage("task-json-key", "a key never reaches the MLflow store or artifacts",
             "write task.json unredacted, the answers' own redaction off too (each layer alone is covered by the other)", WRITER,
             "                        text = redact(json.dumps(task, indent=2, default=str), *secrets)",
             "                        text = json.dumps(task, indent=2, default=str)",
             ("tests/reliability/test_round2_keys.py::test_9_a_key_the_endpoint_echoes_back_is_never_stored",),
             also=(("v2v_lab/api/responses.py", "    return redact_received(response.json(), key)",
                    "    return response.json()"),)),
    Sabotage("secret-repr", "a key never reaches CLI output or exception texts",
             "let a Secret show its key in its repr", "v2v_lab/api/_secret.py",
             "        return \"Secret('***')\"",
             "        return f\"Secret({self._value!r})\"",
             ("tests/reliability/test_secrets.py::test_a_canary_key_goes_nowhere",)),
    Sabotage("paid-plain-http", "a key never leaves for a host the user did not name: plain http only to loopback",
             "let a paid provider's key go over plain http anywhere", "v2v_lab/api/providers.py",
             '        if parts.scheme == "http" and not (is_loopback_host(parts.hostname)',
             '        if not self.paid and parts.scheme == "http" and not (is_loopback_host(parts.hostname)',
             (MONEY + "test_12_a_spec_file_cannot_send_a_paid_key_elsewhere",
              "tests/reliability/test_round2_keys.py::"
              "test_7_the_emulator_key_goes_only_to_a_host_the_user_named_and_plain_http_only_to_loopback")),
    Sabotage("nan-cap", "NaN or zero caps and concurrencies are refused",
             "take a NaN credit cap (which switches the budget off)", "v2v_lab/sweeps/outcome.py",
             "                                             or not math.isfinite(self.max_credits) or self.max_credits < 0):",
             "                                             or self.max_credits < 0):",
             (MONEY + "test_9_bad_numbers_are_refused_by_name",),
             also=(("v2v_lab/cli_args.py", "        if not math.isfinite(value):", "        if False:"),)),
    Sabotage("half-logged", "kill -9 mid-log: one complete MLflow run per cell",
             "keep the runs a killed sweep left half logged", WRITER,
             "                    self.client.delete_run(run.info.run_id)\n",
             "                    pass\n",
             ("tests/reliability/test_crash_resume.py::test_ten_kills_and_reruns_lose_nothing_and_pay_nothing_twice",)),
]


def _copy_checkout(dest: Path) -> None:
    """The tracked files as they are in the working tree (edits included), nothing else."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _changes(sab: Sabotage) -> tuple[tuple[str, str, str], ...]:
    return ((sab.path, sab.old, sab.new), *sab.also)


def stale_in(sab: Sabotage, root: Path) -> str | None:
    """Why the sabotage no longer applies to the checkout at root (None: it does): each text to
    break must occur exactly once."""
    for path, old, _ in _changes(sab):
        found = (root / path).read_text().count(old)
        if found != 1:
            return f"{path}: the text to break occurs {found} times"
    return None


# What a row's run can come to. Only CAUGHT counts: a named test failed by an assertion.
CAUGHT, MISSED, BROKEN, STALE = "CAUGHT", "MISSED", "BROKEN", "STALE"
TEST_TIMEOUT_S = 600  # pytest-timeout, per test: a timeout is BROKEN, never a catch


@dataclass(frozen=True)
class Outcome:
    """One named test's result, read from the JUnit XML pytest wrote."""

    test: str  # the node id as pytest reports it (parameters included)
    kind: str  # passed | assertion | raised | timeout | error | skipped
    how: str = ""


def _outcome(case: ET.Element) -> Outcome:
    test = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name', '')}"
    for child in case:
        message = (child.get("message") or (child.text or "")).strip().splitlines()
        first = message[0][:150] if message else ""
        if child.tag == "error":  # a fixture's setup or teardown, or collection: not the guarantee
            return Outcome(test, "error", first)
        if child.tag == "skipped":
            return Outcome(test, "skipped", first)
        if child.tag == "failure":
            if "Timeout" in first and first.startswith("Failed"):
                return Outcome(test, "timeout", first)
            # An assertion: `assert`, or pytest's own (pytest.raises that did not raise, pytest.fail).
            if first.startswith(("AssertionError", "assert ", "Failed:")):
                return Outcome(test, "assertion", first)
            return Outcome(test, "raised", first)  # the test crashed on something else: a precondition
    return Outcome(test, "passed")


def verdict(outcomes: list[Outcome], missing: list[str]) -> tuple[str, str]:
    """CAUGHT when a named test failed by an assertion and nothing named errored; BROKEN when a
    named test is missing, errored, timed out, was skipped or crashed on something other than an
    assertion (and none caught it); MISSED when every named test passed."""
    if missing:
        return BROKEN, f"not found: {', '.join(missing)}"
    errors = [o for o in outcomes if o.kind == "error"]
    caught = [o for o in outcomes if o.kind == "assertion"]
    if caught and not errors:
        return CAUGHT, f"{caught[0].test.split('::')[-1]}: {caught[0].how}"
    bad = errors or [o for o in outcomes if o.kind in ("timeout", "raised", "skipped")]
    if bad:
        return BROKEN, f"{bad[0].kind} in {bad[0].test.split('::')[-1]}: {bad[0].how}"
    return MISSED, f"{len(outcomes)} passed"


def _read_junit(path: Path, named: tuple[str, ...]) -> tuple[list[Outcome], list[str]]:
    """Each named test's outcomes (a parametrized name: every case of it), and the names with none."""
    if not path.is_file():
        return [], list(named)
    def is_named(o: Outcome, name: str) -> bool:
        return o.test == name or o.test.startswith(name + "[")

    outcomes = [o for o in map(_outcome, ET.parse(path).getroot().iter("testcase")) if any(is_named(o, n) for n in named)]
    missing = [n for n in named if not any(is_named(o, n) for o in outcomes)]
    return outcomes, missing


def run_one(sab: Sabotage, python: str) -> tuple[str, str, float]:
    """(CAUGHT | MISSED | BROKEN | STALE, how, seconds). CAUGHT is what a sabotage should get."""
    with tempfile.TemporaryDirectory(prefix="v2v-sabotage-") as tmp:
        copy = Path(tmp) / "checkout"
        _copy_checkout(copy)
        why = stale_in(sab, copy)
        if why:
            return STALE, why, 0.0
        for path, old, new in _changes(sab):
            target = copy / path
            target.write_text(target.read_text().replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy), "V2V_LAB_TEST_OUTPUT": str(Path(tmp) / "out")}
        junit = Path(tmp) / "junit.xml"
        t0 = time.monotonic()
        try:
            subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "--timeout",
                            str(TEST_TIMEOUT_S), f"--junitxml={junit}", "-o", "junit_family=xunit1", *sab.tests],
                           cwd=copy, env=env, capture_output=True, text=True,
                           timeout=TEST_TIMEOUT_S * len(sab.tests) + 300)
        except subprocess.TimeoutExpired:
            return BROKEN, "pytest itself did not end", time.monotonic() - t0
        took = time.monotonic() - t0
        return (*verdict(*_read_junit(junit, sab.tests)), took)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("words", nargs="*", help="run only sabotages whose name contains one of these")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the sabotage of this exact name (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the sabotages and exit")
    parser.add_argument("--check", action="store_true", help="only check that every sabotage still applies")
    args = parser.parse_args()
    unknown = [n for n in args.only if n not in {s.name for s in SABOTAGES}]
    if unknown:
        parser.error(f"--only: no sabotage named {', '.join(unknown)} (see --list)")
    chosen = [s for s in SABOTAGES if (not args.only or s.name in args.only)
              and (not args.words or any(w in s.name for w in args.words))]
    if args.list:
        for s in chosen:
            print(f"{s.name:18} {s.what}  ->  {', '.join(s.tests)}")
        return 0
    if args.check:
        stale = [f"{s.name}: {why}" for s in chosen if (why := stale_in(s, ROOT))]
        print("\n".join(stale) or f"all {len(chosen)} sabotages apply")
        return 1 if stale else 0
    rows = []
    for sab in chosen:
        result, how, took = run_one(sab, sys.executable)
        rows.append((sab, result, how, took))
        print(f"{result:6} {sab.name:20} {took:6.1f} s  {how}", flush=True)
    print("\n| row | sabotage | test | result |\n| --- | --- | --- | --- |")
    for sab, result, how, _ in rows:
        tests = ", ".join(f"`{t.split('/')[-1]}`" for t in sab.tests)
        print(f"| {sab.row} | {sab.what} | {tests} | {result}: {how.replace('|', '/')} |")
    caught = sum(result == CAUGHT for _, result, _, _ in rows)
    print(f"\n{caught} of {len(rows)} sabotages caught")
    bad = [f"{s.name} ({result})" for s, result, _, _ in rows if result != CAUGHT]
    if bad:
        print(f"not caught: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
