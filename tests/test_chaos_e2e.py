"""The product end to end: playbooks/chaos.yml against a real demo target, read back from the files
the chaos_report callback wrote, checked against an independent probe and against the targets.

One demo instance (its own state dir and ports) serves every test of this module.
"""

import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import psutil
import pytest

from harness import (REPO_ROOT, ansible_env, require, require_image, require_postgres_bin_dir, run_playbook,
                     start_playbook)

PROBE_INTERVAL = 0.05
# The experiment's own probe interval (chaos_experiment_probe_interval's default).
EXPERIMENT_PROBE_INTERVAL = 0.1
# A sample is good when a 200 comes within this, as for the experiment's probe (its default timeout).
INDEPENDENT_TIMEOUT = 2.0


def scenario(name, type_, duration, **parameters):
    return dict(name=name, type=type_, intensity="light", targets="demo-local", duration=duration, parameters=parameters)


@pytest.fixture(scope="module")
def demo():
    require_postgres_bin_dir()
    require("supervisord", "pip install supervisor")
    # PostgreSQL runs as the postgres user, which must reach its data dir: /tmp, not pytest's 0700 tmp.
    root = tempfile.mkdtemp(prefix="magsasa-e2e-%s-" % uuid.uuid4().hex[:6])
    os.chmod(root, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    state = os.path.join(root, "state")
    try:
        up = run_playbook("demo_up.yml", {"demo_target_state_dir": state})
        assert up.returncode == 0, up.stdout + up.stderr
        with open(os.path.join(state, "demo.json")) as handle:
            info = json.load(handle)
        info["root"] = root
        yield info
    finally:
        down = run_playbook("demo_down.yml", {"demo_target_state_dir": state, "demo_target_purge": True})
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


def chaos_playbook(demo_state_dir, fault_state, reports, extra, args=(), background=False, env=None):
    """Run chaos.yml against the demo whose state dir is given, with this test's fault state dir
    and report dir, and short timings."""
    extra = dict({"chaos_experiment_state_dir": str(fault_state), "chaos_experiment_baseline_seconds": 2,
                  "chaos_experiment_tick": 2, "chaos_experiment_lease": 8, "chaos_suite_pause_between": 1}, **extra)
    env = ansible_env(MAGSASA_DEMO_STATE_DIR=demo_state_dir, CHAOS_REPORT_OUTPUT_DIR=str(reports), **(env or {}))
    if background:
        return start_playbook("chaos.yml", extra, args=("-i", "inventories/local"), env=env, merge_stderr=True)
    return run_playbook("chaos.yml", extra, args=("-i", "inventories/local") + tuple(args), env=env, timeout=600)


def assert_nothing_left(fault_state):
    leftovers = fault_processes(fault_state)
    for proc in leftovers:
        proc.kill()
    records = [n for n in os.listdir(str(fault_state)) if n.endswith(".json")] if fault_state.exists() else []
    assert not leftovers, "fault processes left behind: %s" % leftovers
    assert not records, "fault records left behind: %s" % records


@pytest.fixture
def run(demo, tmp_path):
    """chaos.yml against the local-mode demo; the test fails if it leaves a fault behind."""
    fault_state = tmp_path / "faults"
    reports = tmp_path / "reports"

    def chaos(extra, args=(), background=False, env=None):
        return chaos_playbook(demo["state_dir"], fault_state, reports, extra, args, background, env)

    chaos.fault_state = fault_state
    chaos.reports = reports
    yield chaos
    assert_nothing_left(fault_state)


def fault_processes(fault_state):
    """Fault workers of the faults recorded in ``fault_state`` (other runs on this machine have their own)."""
    ids = set()
    for folder in (fault_state, fault_state / "history"):
        if folder.is_dir():
            ids.update(name[:-len(".json")] for name in os.listdir(str(folder)) if name.endswith(".json"))
    found = []
    for proc in psutil.process_iter(["pid", "environ"]):
        try:
            if (proc.info["environ"] or {}).get("MAGSASA_CHAOS_FAULT_ID") in ids:
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


def results(reports):
    with open(str(reports / "chaos_results.json")) as handle:
        return json.load(handle)


class IndependentProbe(threading.Thread):
    """A plain urllib sampler beside the experiment: our own ground truth for its numbers. Each slot of
    its fixed timeline is its own request thread, so a request that hangs until its timeout does not
    push the next samples back (which would stretch the outages it sees)."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.found = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def run(self):
        next_at = time.time()
        while not self.done.is_set():
            threading.Thread(target=self.sample, daemon=True).start()
            next_at += PROBE_INTERVAL
            time.sleep(max(0.0, next_at - time.time()))

    def sample(self):
        sent = time.time()
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url, timeout=INDEPENDENT_TIMEOUT) as response:
                response.read()
                ok = response.status == 200
        except Exception:
            ok = False
        with self.lock:
            self.found.append((sent, ok, (time.perf_counter() - started) * 1000.0))

    @property
    def samples(self):
        with self.lock:
            return sorted(self.found)

    def outage_spans(self, start, end):
        """(first failed sample, next good sample) of each outage in [start, end]."""
        spans, down_since = [], None
        for sent, ok, _latency in self.samples:
            if sent < start or sent > end:
                continue
            if not ok and down_since is None:
                down_since = sent
            elif ok and down_since is not None:
                spans.append((down_since, sent))
                down_since = None
        return spans

    def outages(self, start, end):
        return [up - down for down, up in self.outage_spans(start, end)]

    def availability(self, start, end):
        window = [ok for sent, ok, _latency in self.samples if start <= sent <= end]
        return 100.0 * sum(window) / len(window)

    def p95(self, start, end):
        """Nearest-rank p95 latency of the successful samples sent in [start, end), or None."""
        values = sorted(latency for sent, ok, latency in self.samples if ok and start <= sent < end)
        return values[max(0, -(-95 * len(values) // 100) - 1)] if values else None

    def recovery(self, fault_end, streak_needed):
        """Seconds from fault_end to the first of ``streak_needed`` healthy samples in a row."""
        streak = []
        for sent, ok, _latency in self.samples:
            if sent < fault_end:
                continue
            streak = streak + [sent] if ok else []
            if len(streak) == streak_needed:
                return max(0.0, streak[0] - fault_end)
        return None

    def metrics(self, window, ours, recovery_samples=3):
        """The five metrics of the same window, computed here from this probe's own samples.

        Seen at the experiment's probe resolution: outages less than one of its intervals apart are one
        (it cannot see a shorter good spell), and MTTR is taken over the outages both saw, here and in
        ``ours`` (two samplers need not catch the same single slow answer): an outage only one of them
        saw must be too short for the other to be sure to catch (under 3 of the experiment's intervals)."""
        chaos_end = window["observe_end"]
        spans = []
        for down, up in self.outage_spans(window["fault_start"], chaos_end):
            if spans and down - spans[-1][1] < EXPERIMENT_PROBE_INTERVAL:
                spans[-1] = (spans[-1][0], up)
            else:
                spans.append((down, up))
        matched = [(down, up) for down, up in spans if any(down <= o["end"] and up >= o["start"] for o in ours)]
        ours_matched = [o for o in ours if any(down <= o["end"] and up >= o["start"] for down, up in spans)]
        unmatched = ([up - down for down, up in spans if (down, up) not in matched]
                     + [o["duration_seconds"] for o in ours if o not in ours_matched])
        assert all(length < 3 * EXPERIMENT_PROBE_INTERVAL for length in unmatched), (unmatched, ours, spans)
        self.ours_mttr = (sum(o["duration_seconds"] for o in ours_matched) / len(ours_matched)
                          if ours_matched else None)
        outages = [up - down for down, up in matched]
        availability = self.availability(window["fault_start"], chaos_end)
        baseline = self.p95(window["baseline_start"], window["fault_start"])
        during = self.p95(window["fault_start"], window["fault_end"])
        return {
            "mttr_seconds": sum(outages) / len(outages) if outages else None,
            "availability_percent": availability,
            "error_rate_percent": 100.0 - availability,
            "latency_degradation_ms": during - baseline if during is not None and baseline is not None else None,
            "recovery_seconds": self.recovery(window["fault_end"], recovery_samples),
        }


# How far two samplers on their own clocks (ours at 100 ms, the independent one at PROBE_INTERVAL) may
# differ on the same run: an interval of each plus scheduling slack; for a p95 of a few dozen samples
# each, 50 ms or half the value, whichever is more.
AGREEMENT = {
    "mttr_seconds": lambda ours: 0.1 + PROBE_INTERVAL + 0.1,
    "availability_percent": lambda ours: 2.0,
    "error_rate_percent": lambda ours: 2.0,
    "latency_degradation_ms": lambda ours: max(50.0, abs(ours) / 2),
    "recovery_seconds": lambda ours: 0.1 + PROBE_INTERVAL + 0.1,
}


def assert_metrics_agree(record, probe):
    """All five metrics of one experiment match what the independent probe saw of the same run."""
    ours = record["metrics"]
    independent = probe.metrics(record["window"], [o for o in ours["outages"] if not o["open"]])
    ours = dict(ours, mttr_seconds=probe.ours_mttr)  # over the outages both saw, as the independent one
    for metric, tolerance in AGREEMENT.items():
        if ours[metric] is None or independent[metric] is None:
            assert ours[metric] is None and independent[metric] is None, (record["name"], metric, ours, independent)
            continue
        assert abs(ours[metric] - independent[metric]) <= tolerance(ours[metric]), (
            record["name"], metric, ours[metric], independent[metric], ours["outages"],
            probe.outage_spans(record["window"]["fault_start"], record["window"]["observe_end"]))


def test_suite_numbers_agree_with_an_independent_probe(demo, run):
    probe = IndependentProbe(demo["health_url"])
    probe.start()
    try:
        result = run({"chaos_suite_scenarios": [
            scenario("E2E CPU", "cpu", 4, workers=1, load_percent=50),
            scenario("E2E Process Crash", "process", 6, signal="SIGKILL", wait_for_restart=20),
            scenario("E2E Database Downtime", "database", 4, mode="crash"),
        ], "chaos_suite_groups": {"e2e": ["E2E CPU", "E2E Process Crash", "E2E Database Downtime"]},
            "chaos_group": "e2e",
            # as the demo inventory declares them: a single database's downtime fails requests
            "chaos_expected_violations": {"E2E Database Downtime": ["error_rate_percent", "availability_percent"]}})
    finally:
        probe.done.set()
        probe.join(timeout=5)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    data = results(run.reports)
    by_name = {r["name"]: r for r in data["experiments"]}
    assert set(by_name) == {"E2E CPU", "E2E Process Crash", "E2E Database Downtime"}

    for record in data["experiments"]:
        assert_metrics_agree(record, probe)

    cpu = by_name["E2E CPU"]
    assert cpu["status"] == "completed" and cpu["slo"]["verdict"] == "pass", cpu
    effect = cpu["fault"]["results"][0]["effect"]
    assert effect, "the CPU fault reported no measured effect"

    crash = by_name["E2E Process Crash"]
    assert crash["status"] == "completed", crash
    killed = crash["fault"]["results"][0]
    assert killed["effect"]["restarted"] and killed["effect"]["new_pids"] != killed["details"]["killed_pids"]
    metrics, window = crash["metrics"], crash["window"]
    assert len(metrics["outages"]) == 1, metrics["outages"]
    # An outage shorter than the experiment's probe interval (one failed 50 ms sample on a busy machine)
    # falls between that probe's samples: it can be compared only from one interval up.
    seen = probe.outages(window["fault_start"] - 1, window["observe_end"])
    ours = [outage for outage in seen if outage >= EXPERIMENT_PROBE_INTERVAL]
    assert len(ours) == 1, "the independent probe saw %s" % seen
    # Two samplers on different clocks: agree within an interval of each plus scheduling slack.
    assert abs(metrics["mttr_seconds"] - ours[0]) <= 0.1 + PROBE_INTERVAL + 0.1, (metrics["mttr_seconds"], ours)
    independent = probe.availability(window["fault_start"], window["observe_end"])
    assert abs(metrics["availability_percent"] - independent) <= 2.0, (metrics["availability_percent"], independent)
    assert metrics["recovered"] and 0 <= metrics["recovery_seconds"] <= 5

    # The database was down for the planned 4 s (crash mode): the API failed during it and came
    # back by itself once PostgreSQL was restored by the fault's revert.
    database = by_name["E2E Database Downtime"]
    assert database["status"] == "completed", database
    db_metrics, db_window = database["metrics"], database["window"]
    assert db_metrics["recovered"], db_metrics
    assert len(db_metrics["outages"]) == 1 and 3.5 <= db_metrics["mttr_seconds"] <= 4 + 5, db_metrics
    ours = probe.outages(db_window["fault_start"] - 1, db_window["observe_end"])
    assert len(ours) == 1 and abs(db_metrics["mttr_seconds"] - ours[0]) <= 0.3, (db_metrics["mttr_seconds"], ours)
    with urllib.request.urlopen(demo["api_url"] + "/api/farmers", timeout=5) as response:
        assert response.status == 200
    # 4 s of downtime in the observed window costs more than the 5 % error budget: that violation
    # is declared, so it is marked expected and does not fail the experiment; nothing else is excused.
    checks = {c["metric"]: c for c in database["slo"]["checks"]}
    assert db_metrics["error_rate_percent"] > 5 and checks["error_rate_percent"]["expected"] is True, database["slo"]
    assert "error_rate_percent" in database["slo"]["expected_violations"]
    undeclared = [m for m, c in checks.items() if not c["passed"] and not c.get("expected")]
    assert database["slo"]["verdict"] == ("fail" if undeclared else "pass"), database["slo"]

    report = (run.reports / "chaos_report.md").read_text()
    assert "E2E Process Crash" in report and "E2E Database Downtime" in report and "xychart-beta" in report
    assert "## Expected violations" in report and "E2E Database Downtime: **Error rate** was" in report
    suite = ET.parse(str(run.reports / "junit.xml")).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 3


def test_a_custom_scenario_runs_its_task_file(run, tmp_path):
    marker = tmp_path / "marker"
    custom = dict(name="E2E Custom", type="custom", intensity="light", targets="demo-local", duration=3,
                  tasks_file=str(REPO_ROOT / "tests" / "tasks" / "custom_fault.yml"))
    result = run({"chaos_suite_scenarios": [custom], "chaos_suite_groups": {"e2e": ["E2E Custom"]},
                  "chaos_group": "e2e", "custom_fault_marker": str(marker)})
    assert result.returncode == 0, result.stdout[-3000:]
    record = results(run.reports)["experiments"][0]
    assert record["status"] == "completed" and record["slo"]["verdict"] == "pass", record
    assert marker.read_text().startswith("e2e-custom-")


def test_impossible_slos_fail_the_run_and_list_the_violations(run):
    result = run({
        "chaos_suite_scenarios": [scenario("E2E Tight", "process", 4, signal="SIGKILL", wait_for_restart=20)],
        "chaos_suite_groups": {"e2e": ["E2E Tight"]}, "chaos_group": "e2e", "chaos_fail_on_violation": True,
        "chaos_slo": {"mttr_seconds": 0.01, "max_error_rate_percent": 0, "min_availability_percent": 100,
                      "max_latency_degradation_ms": 500, "max_recovery_seconds": 0.01},
    }, env={"ANSIBLE_CALLBACKS_ENABLED": "magsasa.chaos.chaos_report,ansible.posix.timer"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "chaos_report: FAIL" in output
    # the chaos_suite role failed the run; the callback listed after the report's still got its end
    assert "chaos: 1 experiment(s) failed the run: E2E Tight: FAIL" in result.stdout, output[-3000:]
    assert "Playbook run took" in result.stdout, output[-3000:]
    record = results(run.reports)["experiments"][0]
    failed = sorted(c["metric"] for c in record["slo"]["checks"] if not c["passed"])
    assert failed == ["availability_percent", "error_rate_percent", "mttr_seconds", "recovery_seconds"], record["slo"]
    report = (run.reports / "chaos_report.md").read_text().lower()
    for words in ("availability", "error rate", "mttr", "recovery"):
        assert words in report, words
    failures = ET.parse(str(run.reports / "junit.xml")).getroot().findall(".//failure")
    assert len(failures) == 1


def test_check_mode_injects_nothing_and_reports_a_dry_run(run):
    result = run({"chaos_suite_scenarios": [scenario("E2E Dry", "cpu", 30, workers=2, load_percent=90)],
                  "chaos_suite_groups": {"e2e": ["E2E Dry"]}, "chaos_group": "e2e"}, args=("--check",))
    assert result.returncode == 0, result.stdout[-3000:]
    assert not fault_processes(run.fault_state)
    assert not run.fault_state.exists() or not os.listdir(str(run.fault_state)), os.listdir(str(run.fault_state))
    record = results(run.reports)["experiments"][0]
    assert record["status"] == "dry_run"
    assert record["fault"]["results"][0]["plan"], record["fault"]
    assert "dry run" in (run.reports / "chaos_report.md").read_text().lower()


def test_halt_from_another_shell_reverts_a_running_experiment(demo, run):
    proc = run({"chaos_suite_scenarios": [scenario("E2E Long CPU", "cpu", 120, workers=1, load_percent=40)],
                "chaos_suite_groups": {"e2e": ["E2E Long CPU"]}, "chaos_group": "e2e"}, background=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not fault_processes(run.fault_state):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        assert fault_processes(run.fault_state), "the experiment never started its workers"
        halted = run_playbook("halt.yml", {"chaos_state_dir": str(run.fault_state)}, args=("-i", "inventories/local"))
        assert halted.returncode == 0, halted.stdout + halted.stderr
        assert "reverted " in halted.stdout
        time.sleep(1)
        assert not fault_processes(run.fault_state), "halt.yml left the workers running"
        output = proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    history = os.listdir(str(run.fault_state / "history"))
    with open(str(run.fault_state / "history" / history[0])) as handle:
        assert json.load(handle)["reverted_by"] == "chaos_faults:absent_all"
    record = results(run.reports)["experiments"][0]
    assert record["status"] == "aborted" and "reverted outside" in record["reason"], (record, output[-2000:])


@pytest.mark.parametrize("extra, message", [
    ({"chaos_group": "nightly"}, "chaos_group 'nightly' is not a scenario group; known: smoke_test"),
    ({"chaos_intensity": "extreme"}, "value of chaos_suite_intensity must be one of"),
    ({"chaos_scenario": "Meltdown"}, "chaos_scenario 'Meltdown' is not in the catalog; known: Light CPU Stress"),
    ({"chaos_scenario": "Region Failure"}, "targets 'region_primary', which matches no host"),
    ({"chaos_suite_scenarios": [{"name": "No type", "targets": "demo-local", "duration": 5}],
      "chaos_suite_groups": {"e2e": ["No type"]}, "chaos_group": "e2e"}, "scenario 'No type': type is required"),
    ({"chaos_slo": {"mttr_seconds": "fast"}}, 'chaos_slo.mttr_seconds must be a number, got str \\"fast\\"'),
])
def test_bad_input_fails_in_preflight_with_nothing_injected(run, extra, message):
    result = run(extra)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert not run.fault_state.exists()


def test_production_needs_the_explicit_opt_in(tmp_path):
    result = run_playbook("chaos.yml", {"chaos_scenario": "Light CPU Stress"}, args=("-i", "inventories/production"),
                          env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(tmp_path)))
    assert result.returncode != 0
    assert "without -e chaos_allow_production=true" in result.stdout


@pytest.fixture(scope="module")
def container_demo():
    client = require_image(os.environ.get("MAGSASA_BASE_IMAGE", "magsasa/debian-base:bookworm"))
    root = tempfile.mkdtemp(prefix="magsasa-e2e-ctr-%s-" % uuid.uuid4().hex[:6])
    prefix = "magsasa-e2e-%s" % uuid.uuid4().hex[:6]
    extra = {"demo_target_mode": "container", "demo_target_state_dir": os.path.join(root, "state"),
             "demo_target_name_prefix": prefix}
    try:
        up = run_playbook("demo_up.yml", extra)
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr
        with open(os.path.join(root, "state", "demo.json")) as handle:
            info = json.load(handle)
        info["client"] = client
        yield info
    finally:
        down = run_playbook("demo_down.yml", dict(extra, demo_target_purge=True))
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not client.containers.list(all=True, filters={"name": prefix}), "demo containers left behind"


def test_container_crash_and_database_downtime_against_the_container_demo(container_demo, tmp_path):
    api = container_demo["client"].containers.get(container_demo["api_container"])
    restarts_before = api.attrs["RestartCount"]
    result = chaos_playbook(container_demo["state_dir"], tmp_path / "faults", tmp_path / "reports", {
        "chaos_suite_scenarios": [
            dict(name="E2E Container Crash", type="container", intensity="medium", targets="containers", duration=6,
                 parameters={"action": "crash", "wait_for_recovery": 60}),
            dict(name="E2E Container Database Downtime", type="database", intensity="light", targets="db", duration=4,
                 parameters={"mode": "crash"}),
            dict(name="E2E Process Crash In Containers", type="process", intensity="medium", targets="app", duration=4,
                 parameters={"signal": "SIGKILL"}),
        ],
        "chaos_suite_groups": {"e2e": ["E2E Container Crash", "E2E Container Database Downtime",
                                       "E2E Process Crash In Containers"]},
        "chaos_group": "e2e"})
    try:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        by_name = {r["name"]: r for r in results(tmp_path / "reports")["experiments"]}

        crash = by_name["E2E Container Crash"]
        assert crash["status"] == "completed", crash
        effect = crash["fault"]["results"][0]["effect"]["containers"][0]
        assert effect["restart_count_after"] == effect["restart_count_before"] + 1 == restarts_before + 1, effect
        assert crash["metrics"]["recovered"] and crash["metrics"]["recovery_seconds"] is not None, crash["metrics"]
        api.reload()
        assert api.status == "running" and api.attrs["RestartCount"] == restarts_before + 1

        database = by_name["E2E Container Database Downtime"]
        assert database["status"] == "completed", database
        assert database["metrics"]["recovered"] and database["metrics"]["outages"], database["metrics"]
        db = container_demo["client"].containers.get(container_demo["db_container"])
        assert db.status == "running"

        skipped = by_name["E2E Process Crash In Containers"]
        assert skipped["status"] == "skipped" and "runs in containers" in skipped["reason"], skipped
        with urllib.request.urlopen(container_demo["health_url"], timeout=5) as response:
            assert response.status == 200
    finally:
        assert_nothing_left(tmp_path / "faults")
