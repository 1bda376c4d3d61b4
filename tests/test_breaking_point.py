"""The breaking-point search end to end: playbooks/breaking_point.yml ramps chaos_disk against a
service with a known breaking point and the report says where it broke.

The service (tests/breaking_point_service.py) answers 503 while its own 64 MiB tmpfs has less than
23.5 MiB free. chaos_disk with one worker writes one file of total_mb on that tmpfs (rewritten in
place, so the space stays taken for the whole fault): the service meets its SLOs up to total_mb=40
and fails from 41 on. Each step is a full experiment; every one must be reverted.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from harness import REPO_ROOT, ansible_env, require, run_playbook

MIB = 1024 * 1024
TMPFS_MB = 64
THRESHOLD = int(23.5 * MIB)
TRUE_KNEE = 40


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The tmpfs the test owns and the service that watches it."""
    require("mount")
    mnt = tmp_path_factory.mktemp("bp") / "tmpfs"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % TMPFS_MB, "magsasa-breaking", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        from harness import missing
        missing("cannot mount a tmpfs: %s" % mounted.stderr.strip())
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "breaking_point_service.py"), str(mnt),
                                 str(THRESHOLD)], stdout=subprocess.PIPE, text=True)
        port = int(proc.stdout.readline())
        yield {"mnt": mnt, "url": "http://127.0.0.1:%d/health" % port}
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["umount", str(mnt)], check=True)


def search(service, tmp_path, **overrides):
    """Run playbooks/breaking_point.yml with a one-host inventory; return (result, report dir, fault state)."""
    fault_state = tmp_path / "faults"
    reports = tmp_path / "reports"
    catalog = [
        {"name": "Tmpfs Fill", "type": "disk", "intensity": "medium", "targets": "localhost", "duration": 3,
         "parameters": {"path": str(service["mnt"]), "workers": 1, "total_mb": 24, "min_free_mb": 0,
                        "min_free_percent": 0}},
        {"name": "Heavy Tmpfs Fill", "type": "disk", "intensity": "heavy", "targets": "localhost", "duration": 3,
         "parameters": {"path": str(service["mnt"]), "workers": 1, "total_mb": 56, "min_free_mb": 0,
                        "min_free_percent": 0}},
    ]
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "vars": {"chaos_environment": "development", "chaos_target_url": service["url"],
                 "chaos_suite_scenarios": catalog}}}))
    extra = dict({"chaos_breaking_point_scenario": "Tmpfs Fill", "chaos_breaking_point_parameter": "total_mb",
                  "chaos_breaking_point_start": 20, "chaos_breaking_point_stop": 52,
                  "chaos_breaking_point_resolution": 8, "chaos_breaking_point_coarse_steps": 3,
                  "chaos_breaking_point_max_experiments": 8, "chaos_breaking_point_pause_between": 1,
                  "chaos_experiment_baseline_seconds": 1, "chaos_experiment_recovery_timeout": 10}, **overrides)
    env = ansible_env(MAGSASA_CHAOS_STATE_DIR=str(fault_state), CHAOS_REPORT_OUTPUT_DIR=str(reports))
    result = run_playbook("breaking_point.yml", extra, args=("-i", str(inventory)), env=env, timeout=300)
    return result, reports, fault_state


def assert_all_reverted(service, fault_state, steps):
    """One revert history entry per step, no active fault record, nothing left on the tmpfs."""
    history = list((fault_state / "history").glob("*.json")) if (fault_state / "history").exists() else []
    assert len(history) == steps, "history %s for %d steps" % ([p.name for p in history], steps)
    active = [n for n in os.listdir(str(fault_state)) if n.endswith(".json")] if fault_state.exists() else []
    assert not active, "fault records left behind: %s" % active
    assert os.listdir(str(service["mnt"])) == [], "scratch left on the tmpfs: %s" % os.listdir(str(service["mnt"]))


def read_entry(reports):
    results = json.loads((reports / "chaos_results.json").read_text())
    entries = results["breaking_points"]
    assert len(entries) == 1
    return results, entries[0], (reports / "chaos_report.md").read_text()


def test_finds_the_known_knee(service, tmp_path):
    result, reports, fault_state = search(service, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    results, entry, markdown = read_entry(reports)
    steps = entry["steps"]
    # The knee is the highest passing value, the first failure lies above the true knee, and they
    # are no more than the resolution apart.
    assert entry["knee"] <= TRUE_KNEE < entry["first_fail"], steps
    assert entry["first_fail"] - entry["knee"] <= 8
    # A coarse ramp of 20, 36, 52, then one bisection step: 44.
    assert [s["value"] for s in steps] == [20, 36, 52, 44]
    assert "knee found" in entry["reason"]
    for step in steps:
        assert step["verdict"] == ("pass" if step["value"] <= TRUE_KNEE else "fail"), step
        assert step["status"] == "completed", step
    # One experiment record per step, named after the value.
    names = [r["name"] for r in results["experiments"]]
    assert names == ["Tmpfs Fill @ total_mb=%s" % s["value"] for s in steps]
    assert_all_reverted(service, fault_state, len(steps))
    # The report section: ramp table, knee, model, headroom against the catalog, chart.
    assert "## Breaking point" in markdown
    for step in steps:
        assert "| %s |" % step["value"] in markdown
    assert "measured knee of %s" % entry["knee"] in markdown
    heavy = [h for h in entry["headroom"] if h["scenario"] == "Heavy Tmpfs Fill"][0]
    assert heavy["value"] == 56 and heavy["ratio"] == round(56.0 / entry["knee"], 2)
    assert "Heavy Tmpfs Fill at 56 is %s× beyond the measured knee" % heavy["ratio"] in markdown
    assert "xychart-beta" in markdown
    # The response is a step (0 % errors up to the knee, all errors above it), so a straight line
    # cannot place the break precisely; what holds is that the error-rate line rises and its
    # predicted crossing of the 5 % target lies inside the ramped range, within its own stated
    # uncertainty (or the bracket) of the measured break, as response_model judges it.
    errors = [m for m in entry["model"] if m["metric"] == "error_rate_percent"][0]
    assert errors["fit"]["slope"] > 0
    predicted = errors["predicted_break"]
    measured = (entry["knee"] + entry["first_fail"]) / 2.0
    assert abs(predicted["value"] - measured) <= max(2 * predicted["uncertainty"], 1.5), (predicted, measured)
    assert errors["agrees"] is True


def test_first_step_fails(service, tmp_path):
    result, reports, fault_state = search(service, tmp_path, chaos_breaking_point_start=44)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    dummy, entry, markdown = read_entry(reports)
    assert [s["value"] for s in entry["steps"]] == [44]
    assert entry["reason"] == "breaks at the lowest value tried (44)"
    assert "breaks at the lowest value tried" in markdown
    assert_all_reverted(service, fault_state, 1)


def test_bad_search_refused_before_injecting(service, tmp_path):
    """A parameter the disk fault lacks. (The other refusals, range order and bounds, resolution and
    time budget, are the same filter error: unit tests of validate_spec cover each.)"""
    result, reports, fault_state = search(service, tmp_path, chaos_breaking_point_parameter="loss_percent")
    assert result.returncode != 0
    assert "parameter 'loss_percent' is not one a disk fault can ramp" in result.stdout + result.stderr
    assert not (reports / "chaos_results.json").exists() or not json.loads(
        (reports / "chaos_results.json").read_text())["experiments"]
    assert not (fault_state / "history").exists() or not list((fault_state / "history").iterdir())
    assert os.listdir(str(service["mnt"])) == []
