"""The proof of the proofs: break each guarantee of the README's reliability table on purpose and
see the test that proves it fail.

Each sabotage is one text replacement in one file, applied to a temporary copy of the checkout
(never to the checkout itself); the row's test then runs against the copy (PYTHONPATH points every
process, console scripts included, at the copy's package). A sabotage whose text no longer exists
in the code is reported as STALE: the code moved and the sabotage must follow it.

    python bench/sabotage.py              # every sabotage, a table at the end
    python bench/sabotage.py retry key    # only those whose name contains one of the words
    python bench/sabotage.py --list

Exit status 0 only when every sabotage applied and every test failed under it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
             ("tests/reliability/test_crash_resume.py",)),
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
             ("tests/reliability/test_bad_inputs.py",)),
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
             ("tests/reliability/test_secrets.py",)),
    Sabotage("forged-signature", "the emulator refuses forged signatures",
             "serve outputs whatever their signature", "v2v_lab/emulator/files.py",
             '        if not hmac.compare_digest(want, request.query_params.get("sig", "")):\n'
             '            return _error(403, "Invalid signature")\n        if time.time() > expires:',
             '        if time.time() > expires:',
             ("tests/reliability/test_emulator_attacks.py",)),
    Sabotage("traversal", "the emulator refuses path traversal",
             "store an upload under the file name the client gave (unsanitised)", "v2v_lab/emulator/files.py",
             'safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:100] or "file"',
             "safe_name = filename",
             ("tests/reliability/test_emulator_attacks.py",),
             also=(("v2v_lab/emulator/files.py",
                    'path = self.state.workdir / "uploads" / upload_id / "data"  # never a client-given name',
                    'path = self.state.workdir / "uploads" / upload_id / up.filename'),)),
    Sabotage("in-flight", "16 cells in flight plus a second writer leave every run complete",
             "cap the sweep at 4 in flight", RUNNER,
             "        total_sem = asyncio.Semaphore(limit)",
             "        total_sem = asyncio.Semaphore(min(limit, 4))",
             ("tests/reliability/test_store_load.py",)),
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
             ("tests/reliability/test_money_and_keys.py",)),
    Sabotage("unasked", "nothing is spent unasked",
             "spend without asking on a terminal", "v2v_lab/sweeps/budget.py",
             "    if confirm is not None:\n        ok = confirm(question)",
             "    if True:\n        ok = True",
             ("tests/reliability/test_money_and_keys.py",)),
    Sabotage("duration", "clips are priced by their real length",
             "price by the container's frame count alone", "v2v_lab/media/probe.py",
             "    duration = max([count / fps, *(x for x in spans if x == x and 0 < x < 1e7)])",
             "    duration = count / fps",
             ("tests/reliability/test_money_and_keys.py",)),
    Sabotage("spec-base-url", "a key never leaves for a host the user did not name",
             "let a spec file's base_url redirect a paid key", RUNNER,
             "        provider.check_spec_base_url(spec.base_url, spec.line_of(\"base_url\"))",
             "        pass",
             ("tests/reliability/test_money_and_keys.py::test_12_a_spec_file_cannot_send_a_paid_key_elsewhere",)),
    Sabotage("alias-bomb", "an alias bomb stops with one line",
             "no bound on the spec's expanded size", "v2v_lab/sweeps/spec.py",
             "MAX_SPEC_NODES = 200_000", "MAX_SPEC_NODES = 10**12",
             ("tests/reliability/test_money_and_keys.py",)),
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
             ("tests/test_doors.py",)),
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
             "    series = parallel_map(lambda s, o: correlation(s, gradient_magnitude(o)), source, frames.out_a)",
             "    from ._ssim import ssim\n    series = [max(0.0, ssim(a, b)) for a, b in zip(frames.src_a, frames.out_a)]",
             ("tests/test_validity.py::test_structure_ranks_every_appearance_edit_above_every_structural_damage",)),
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
             'served = path is not None and self.videos == "served"', "served = False",
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


def run_one(sab: Sabotage, python: str) -> tuple[str, str, float]:
    """(STALE | FAILED | PASSED, how, seconds). FAILED is what a sabotage should get."""
    with tempfile.TemporaryDirectory(prefix="v2v-sabotage-") as tmp:
        copy = Path(tmp) / "checkout"
        _copy_checkout(copy)
        why = stale_in(sab, copy)
        if why:
            return "STALE", why, 0.0
        for path, old, new in _changes(sab):
            target = copy / path
            target.write_text(target.read_text().replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy), "V2V_LAB_TEST_OUTPUT": str(Path(tmp) / "out")}
        t0 = time.monotonic()
        done = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--timeout", "600",
                               *sab.tests], cwd=copy, env=env, capture_output=True, text=True)
        took = time.monotonic() - t0
        lines = done.stdout.splitlines()
        first = next((ln.strip() for ln in lines if ln.startswith("E ")), "")
        summary = next((ln for ln in reversed(lines) if "failed" in ln or "passed" in ln), "")
        if done.returncode == 0:
            return "PASSED", summary, took
        return "FAILED", (first or summary)[:150], took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="run only sabotages whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the sabotages and exit")
    parser.add_argument("--check", action="store_true", help="only check that every sabotage still applies")
    args = parser.parse_args()
    chosen = [s for s in SABOTAGES if not args.only or any(w in s.name for w in args.only)]
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
        verdict, how, took = run_one(sab, sys.executable)
        rows.append((sab, verdict, how, took))
        print(f"{verdict:6} {sab.name:18} {took:6.1f} s  {how}", flush=True)
    print("\n| row | sabotage | test | result |\n| --- | --- | --- | --- |")
    for sab, verdict, how, _ in rows:
        tests = ", ".join(f"`{t.split('/')[-1]}`" for t in sab.tests)
        print(f"| {sab.row} | {sab.what} | {tests} | {verdict}: {how.replace('|', '/')} |")
    bad = [s.name for s, verdict, _, _ in rows if verdict != "FAILED"]
    if bad:
        print(f"\n{len(bad)} sabotage(s) not caught or stale: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
