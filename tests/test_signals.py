"""Team signals end to end: webhook notifications, the run history with its trend, and the report
as people see it (GitHub-flavoured Markdown and mermaid 11 in a real headless Chromium).

One real run of playbooks/chaos.yml is shared by the module. The service under test is a small
HTTP server this module starts, which is also the webhook receiver: a custom scenario makes it
answer 503 for two seconds (an outage that ends by itself), so the run violates its SLOs. The run
posts to a reachable generic webhook and to a Slack webhook nobody listens on. The history and
trend tests use the cheaper records playbook (tests/playbooks/report_records.yml).
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from harness import REPO_ROOT, QuietHandler, Service, ansible_env, free_port, require, run_playbook

RENDER_DIR = REPO_ROOT / "tests" / "render"
SCENARIO = "Signals Outage"
OUTAGE_SECONDS = 2

pytestmark = pytest.mark.timeout(600)


class OutageAndHooks(QuietHandler):
    """GET: the service under test (503 for the seconds the outage file names, from the first request
    that finds the file).
    POST: a webhook receiver that keeps every body with its path and arrival time."""

    def do_GET(self):
        try:
            seconds = float(Path(self.server.outage_file).read_text())
            started = self.server.outage_started.setdefault("at", time.time())
            down = time.time() < started + seconds
        except (OSError, ValueError):
            down = False
        self.server.gets.append(time.time())
        self.reply(503 if down else 200, b"ok", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append({"path": self.path, "at": time.time(), "body": json.loads(body)})
        self.reply(200)


def run_chaos(root, service_url, extra=None, env=None):
    scenario = dict(name=SCENARIO, type="custom", intensity="light", targets="demo-local", duration=3,
                    tasks_file=str(REPO_ROOT / "tests" / "tasks" / "outage_fault.yml"))
    variables = dict({
        "chaos_suite_scenarios": [scenario], "chaos_suite_groups": {"signals": [SCENARIO]}, "chaos_group": "signals",
        "chaos_target_url": service_url, "outage_fault_file": str(root / "outage"), "outage_fault_seconds": OUTAGE_SECONDS,
        "chaos_experiment_state_dir": str(root / "faults"), "chaos_experiment_baseline_seconds": 2,
        "chaos_experiment_tick": 2, "chaos_experiment_lease": 8, "chaos_suite_pause_between": 1,
    }, **(extra or {}))
    environment = ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(root / "reports"), MAGSASA_DEMO_STATE_DIR=str(root / "no-demo"),
                              **(env or {}))
    return run_playbook("chaos.yml", variables, args=("-i", "inventories/local"), env=environment, timeout=300)


@pytest.fixture(scope="module")
def run():
    root = Path(tempfile.mkdtemp(prefix="signals-"))
    service = Service(OutageAndHooks, gets=[], posts=[], outage_file=str(root / "outage"), outage_started={})
    server = service.server
    base = "http://127.0.0.1:%d" % service.port
    webhook = "%s/hooks/hook-%s" % (base, uuid.uuid4().hex)
    dead_slack = "http://127.0.0.1:%d/services/T000/B000/%s" % (free_port(), uuid.uuid4().hex)
    try:
        result = run_chaos(root, base + "/health", extra={"chaos_notify_slack_webhook": dead_slack},
                           env={"CHAOS_NOTIFY_WEBHOOK_URL": webhook})
        yield {"root": root, "result": result, "output": result.stdout + result.stderr, "posts": server.posts,
               "gets": server.gets, "secrets": [webhook, dead_slack, webhook.rsplit("/", 1)[1], dead_slack.rsplit("/", 1)[1]]}
    finally:
        service.close()
        shutil.rmtree(str(root), ignore_errors=True)


def posts_of(posts, prefix):
    return [p for p in posts if p["path"].startswith(prefix)]


def test_start_violation_and_finish_notifications_arrive_with_their_fields(run):
    assert run["result"].returncode == 0, run["output"][-4000:]
    generic = posts_of(run["posts"], "/hooks/")
    assert [p["body"]["event"] for p in generic] == ["start", "violation", "finish"], generic

    start, violation, finish = (p["body"] for p in generic)
    assert start["source"] == "magsasa.chaos" and start["environment"] == "local"
    (planned,) = start["experiments"]
    assert (planned["name"], planned["type"], planned["duration_seconds"], planned["hosts"]) == (SCENARIO, "custom", 3, ["demo-local"])
    assert start["estimated_seconds"] >= 3
    assert start["started_by"].startswith(os.environ.get("USER", "someone"))
    assert "inventories/local" in start["inventories"][0]
    assert "Starting 1 experiment in local" in start["text"]
    # Before the first experiment: no probe request reached the service before the start message.
    assert generic[0]["at"] < min(run["gets"])

    assert violation["experiment"] == SCENARIO and violation["outcome"] == "FAIL"
    assert any(v.startswith("availability_percent") for v in violation["violations"]), violation
    assert generic[1]["at"] < generic[2]["at"]
    assert finish["verdict"] == "FAIL" and finish["counts"]["violated"] == 1
    assert finish["report"] == str(run["root"] / "reports" / "chaos_report.md")
    assert "Report: " + finish["report"] in finish["text"]


def test_an_unreachable_webhook_warns_and_the_run_completes(run):
    output = " ".join(run["output"].split())
    assert run["result"].returncode == 0, output[-4000:]
    assert "WARNING: the start notification was not delivered (slack webhook at http://127.0.0.1:" in output
    for event in ("violation", "finish"):
        assert "chaos_report: the %s notification to the slack webhook at http://127.0.0.1:" % event in output
    assert "the run goes on" in output
    record = json.loads((run["root"] / "reports" / "chaos_results.json").read_text())["experiments"][0]
    assert record["status"] == "completed" and record["metrics"]["samples_failed"] > 0


def test_webhook_urls_appear_nowhere(run):
    files = [p for p in run["root"].rglob("*") if p.is_file() and p.suffix in (".md", ".json", ".xml")]
    assert {"chaos_report.md", "chaos_results.json", "junit.xml"} <= {p.name for p in files}
    assert any(p.parent.name == "history" for p in files)
    for text in [run["output"]] + [p.read_text() for p in files]:
        for secret in run["secrets"]:
            assert secret not in text


@pytest.fixture(scope="module")
def history_runs():
    """Two consecutive runs of the records playbook into one history directory that already holds
    two malformed files (named like ours, older); the second run keeps one file only."""
    root = Path(tempfile.mkdtemp(prefix="signals-history-"))
    history = root / "reports" / "history"
    history.mkdir(parents=True)
    (history / "20261130T070000Z-aaaaaa.json").write_text("{not json")
    (history / "20261130T070100Z-bbbbbb.json").write_text(json.dumps({"schema": "someone-else/v1"}))
    try:
        first = records_run(root, extra=("-e", "report_set=violations"))
        second = records_run(root, extra=("-e", "report_set=violations"), CHAOS_REPORT_HISTORY_KEEP="1")
        yield {"root": root, "history": history, "first": first, "second": second}
    finally:
        shutil.rmtree(str(root), ignore_errors=True)


def test_two_runs_give_a_trend_listing_both(history_runs):
    for name in ("first", "second"):
        result = history_runs[name]
        assert result.returncode == 0, result.stdout + result.stderr
    markdown = (history_runs["root"] / "reports" / "chaos_report.md").read_text()
    trend = markdown.split("## Trend", 1)[1].split("\n## ", 1)[0]
    for scenario, verdict in (("Light CPU Stress", "PASS"), ("Medium Memory Stress", "FAIL")):
        section = trend.split("**%s" % scenario, 1)[1].split("```mermaid", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| ") and verdict in line]
        assert len(rows) == 2, section
        assert not rows[0].split("|")[1].strip().endswith("(this run)")
        assert rows[1].split("|")[1].strip().endswith("(this run)")
    assert trend.count("xychart-beta") == 2
    assert "> [!WARNING]" not in trend  # the same numbers twice: nothing got worse


def test_a_malformed_history_file_is_skipped_with_a_warning(history_runs):
    output = " ".join((history_runs["first"].stdout + history_runs["first"].stderr).split())
    history = history_runs["history"]
    assert "skipping run history file %s: not JSON" % (history / "20261130T070000Z-aaaaaa.json") in output
    assert "skipping run history file %s: schema is not magsasa.chaos/history/v1" % (
        history / "20261130T070100Z-bbbbbb.json") in output


def test_history_retention_keeps_the_newest(history_runs):
    (kept,) = history_runs["history"].iterdir()  # history_keep=1 on the second run
    entry = json.loads(kept.read_text())
    results = json.loads((history_runs["root"] / "reports" / "chaos_results.json").read_text())
    assert entry["started_at"] == results["run"]["started_at"]
    assert [s["name"] for s in entry["scenarios"]] == ["Light CPU Stress", results["experiments"][1]["name"]]


def test_notify_required_refuses_to_start_when_undeliverable(tmp_path):
    outage = tmp_path / "outage"
    result = run_chaos(tmp_path, "http://127.0.0.1:%d/health" % free_port(), extra={
        "chaos_notify_required": True,
        "chaos_notify_webhook_url": "http://127.0.0.1:%d/hooks/refused-secret" % free_port()})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "chaos_notify_required is true and the start notification was not delivered" in output
    assert "nothing was injected" in output and "refused-secret" not in output
    assert not outage.exists(), "the fault ran although the run was refused"
    assert not (tmp_path / "reports" / "chaos_results.json").exists()


def test_notify_required_without_a_webhook_refuses_to_start(tmp_path):
    result = run_chaos(tmp_path, "http://127.0.0.1:%d/health" % free_port(), extra={"chaos_notify_required": True},
                       env={"CHAOS_NOTIFY_SLACK_WEBHOOK": "", "CHAOS_NOTIFY_WEBHOOK_URL": ""})
    assert result.returncode != 0
    assert "chaos_notify_required is true but no webhook is set" in result.stdout, result.stdout[-3000:]
    assert not (tmp_path / "outage").exists()


# ---------------------------------------------------------------------------------------------
# The report as people read it
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered(run, history_runs):
    """What Chromium drew for the chaos run's report and for the records report with its trend
    (tests/render/render_report.mjs), both in one browser session.

    marked, mermaid and puppeteer-core are installed once from tests/render/package-lock.json into
    a cache directory keyed by the lock file; Debian's chromium is the browser. Set
    MAGSASA_REPORT_SCREENSHOT to a directory to keep a full-page PNG of each report."""
    chromium = require("chromium", "apt-get install chromium (.ci/install-system)")
    node = require("node")
    npm = require("npm")
    lock = (RENDER_DIR / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("MAGSASA_RENDER_CACHE", str(Path.home() / ".cache" / "magsasa-chaos"))) / (
        "render-" + hashlib.sha256(lock).hexdigest()[:16])
    if not (cache / "node_modules" / ".package-lock.json").exists():
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(str(RENDER_DIR / name), str(cache / name))
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=str(cache), capture_output=True,
                                   text=True, timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    shutil.copy(str(RENDER_DIR / "render_report.mjs"), str(cache / "render_report.mjs"))

    reports = {"run": run["root"] / "reports" / "chaos_report.md",
               "history": history_runs["root"] / "reports" / "chaos_report.md"}
    shots = os.environ.get("MAGSASA_REPORT_SCREENSHOT")
    arguments = ["%s=%s" % (path, os.path.join(shots, "signals-%s.png" % name)) if shots else str(path)
                 for name, path in reports.items()]
    profile = tempfile.mkdtemp(prefix="signals-chromium-")
    try:
        done = subprocess.run([node, "render_report.mjs", chromium, profile] + arguments, cwd=str(cache),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(zip(reports, json.loads(done.stdout)))
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def assert_renders_and_reads_well(page):
    assert page["markdown_errors"] == []
    assert page["blocks"], "no mermaid block was rendered"
    for block in page["blocks"]:
        assert block["error"] is None, block
        assert block["legend"], block
    for table in page["tables"]:
        assert table["visible_headers"] == table["headers"], table  # nothing hidden to the right (Score!)


def numeric(ticks):
    return [float(t) for t in ticks]


def test_the_report_of_a_real_run_renders_with_legends_and_numeric_axes(rendered):
    page = rendered["run"]
    assert_renders_and_reads_well(page)
    (timeline,) = page["blocks"]  # the first run of this history: no trend chart yet
    assert timeline["legend"] == ["fault active", "failed samples (share)", "latency of successful samples (ms)"]
    ticks = numeric(timeline["x_ticks"])
    assert 3 <= len(ticks) <= 15 and ticks == sorted(ticks) and min(ticks) <= 0 < max(ticks)  # seconds, not 40 labels
    assert min(numeric(timeline["y_ticks"])) == 0
    assert {"Score", "Availability"} <= {h for t in page["tables"] for h in t["headers"]}
    assert any(code.startswith("http://127.0.0.1:") and code.endswith("/health") for code in page["code"])
    assert any(code.startswith("ansible-playbook ") for code in page["code"])


def test_the_trend_report_renders_with_hostile_names_as_text(rendered):
    page = rendered["history"]
    assert_renders_and_reads_well(page)
    trends = [b for b in page["blocks"] if b["legend"] == ["resilience score", "MTTR (s)"]]
    assert len(trends) == 2 and all(len(b["x_ticks"]) == 2 for b in trends)  # two scenarios, two runs each
    assert len(page["blocks"]) == 4  # and the two experiments' timelines
    assert "<img" not in json.dumps(page["blocks"])
    assert "Medium Memory Stress | <img src=x onerror=alert(1)>" in page["text"]  # shown as text, not markup


# ---------------------------------------------------------------------------------------------
# History: bad input
# ---------------------------------------------------------------------------------------------

def records_run(tmp_path, extra=(), **env):
    return run_playbook(str(REPO_ROOT / "tests" / "playbooks" / "report_records.yml"), args=(
        "-i", str(REPO_ROOT / "tests" / "playbooks" / "inventory" / "report_hosts.yml")) + tuple(extra),
        env=ansible_env(ANSIBLE_CALLBACKS_ENABLED="magsasa.chaos.chaos_report",
                        CHAOS_REPORT_OUTPUT_DIR=str(tmp_path / "reports"), **env))


def test_a_history_dir_that_cannot_be_written_warns_and_the_report_is_written(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the history directory should be")
    result = records_run(tmp_path, CHAOS_REPORT_HISTORY_DIR=str(blocker / "history"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "could not write the run history to %s" % (blocker / "history") in output.replace("\n", " ")
    assert "**Verdict: PASS**" in (tmp_path / "reports" / "chaos_report.md").read_text()
