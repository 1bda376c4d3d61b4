"""Monitoring end to end: the chaos_report callback's Prometheus export (textfile and Pushgateway),
the Grafana dashboard's queries, and PromQL steady-state checks and stop conditions, against a real
Prometheus and Pushgateway (support_prometheus) and a real demo target (test_chaos_e2e's fixture).
"""

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness import REPO_ROOT, free_port, run_module
from support_prometheus import prometheus_stack  # noqa: F401 - the session fixture
from test_chaos_e2e import demo, results, run, scenario  # noqa: F401 - the demo and run fixtures (run judges only its own faults)
from test_report_callback import VERDICT_PLAYBOOK, run_records as run_records_playbook

DASHBOARD = REPO_ROOT / "dashboards" / "chaos.json"
PER_EXPERIMENT = ("mttr_seconds", "error_rate_percent", "availability_percent", "latency_degradation_ms",
                  "recovery_seconds")

pytestmark = pytest.mark.timeout(600)


def expected_value(name, record):
    """What chaos_results.json says a per-experiment metric must be (None: no series expected)."""
    key = name[len("chaos_"):]
    if key in PER_EXPERIMENT:
        return record["metrics"].get(key)
    if key == "resilience_score":
        return record["slo"].get("score")
    if key == "slo_pass":
        return 1.0 if record["status"] == "completed" and record["slo"]["verdict"] == "pass" else 0.0
    if key == "experiment_duration_seconds":
        return record["window"]["observe_end"] - record["window"]["baseline_start"]
    raise AssertionError("unexpected per-experiment metric %s" % name)


def assert_matches_results(name, labels, value, data):
    records = {r["name"]: r for r in data["experiments"]}
    record = records[labels["scenario"]]
    assert labels["type"] == record["type"] and labels["environment"] == record["environment"], labels
    assert labels["intensity"] == (record["intensity"] or ""), labels
    expected = expected_value(name, record)
    assert expected is not None, "%s has a series for %s, whose record has no value" % (name, record["name"])
    assert value == pytest.approx(expected, abs=1e-9), (name, labels, value, expected)


def parse_textfile(path):
    return {family.name: family for family in text_string_to_metric_families(Path(path).read_text())}


def dashboard_expressions(job):
    board = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in board["panels"] for t in p["targets"]]
    expressions += [a["expr"] for a in board["annotations"]["list"]]
    return [(e, e.replace("$job", job).replace("$environment", ".*")) for e in expressions]


# -- the export, through the records playbook (no demo needed) -----------------------------------

def test_textfile_parses_and_keeps_target_hosts_out_unless_asked(tmp_path):
    textfile = tmp_path / "textfile" / "chaos.prom"
    proc = run_records_playbook(tmp_path, "-e", "report_set=violations", env={"CHAOS_PROMETHEUS_TEXTFILE": str(textfile)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "reports" / "chaos_results.json").read_text())
    families = parse_textfile(textfile)
    seen = 0
    for name in ("chaos_mttr_seconds", "chaos_error_rate_percent", "chaos_availability_percent",
                 "chaos_latency_degradation_ms", "chaos_recovery_seconds", "chaos_resilience_score", "chaos_slo_pass",
                 "chaos_experiment_duration_seconds"):
        for sample in families[name].samples:
            assert_matches_results(name, sample.labels, sample.value, data)
            seen += 1
    assert seen >= 14, families
    outcomes = {s.labels["status"]: s.value for s in families["chaos_experiments"].samples}
    assert outcomes == {"pass": 1.0, "fail": 1.0, "skipped": 1.0}
    assert families["chaos_run_start_timestamp_seconds"].samples[0].value <= \
        families["chaos_run_end_timestamp_seconds"].samples[0].value
    assert "app1" not in textfile.read_text()
    assert not list(textfile.parent.glob("chaos.prom.*")), "the atomic write left its temp file"

    proc = run_records_playbook(tmp_path, "-e", "report_set=violations", env={
        "CHAOS_PROMETHEUS_TEXTFILE": str(textfile), "CHAOS_PROMETHEUS_TARGET_LABELS": "true"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    targets = {s.labels["targets"] for s in parse_textfile(textfile)["chaos_resilience_score"].samples}
    # Host names with quotes, newlines and backticks come back exactly: the exposition escapes them.
    assert targets == {",".join(sorted(r["targets"])) for r in data["experiments"] if r["slo"].get("score") is not None}
    assert "app1,app2" in targets


def test_an_unreachable_pushgateway_is_reported_and_the_run_goes_on_unless_required(tmp_path):
    token = "tok-%s" % uuid.uuid4().hex
    url = "http://127.0.0.1:%d" % free_port()
    env = {"CHAOS_PUSHGATEWAY_URL": url, "CHAOS_PUSHGATEWAY_TOKEN": token}
    proc = run_records_playbook(tmp_path, "-e", "report_set=passing", env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "could not push metrics to the Pushgateway at %s" % url in output, output
    assert (tmp_path / "reports" / "chaos_report.md").exists()

    # Required: the chaos_suite role's verdict pushes from a task, and that task fails the run, naming the URL;
    # the callback still writes the reports and its summary (it never ends the process).
    (tmp_path / "reports" / "chaos_report.md").unlink()
    required = run_records_playbook(tmp_path, "-e", "report_set=passing", playbook=VERDICT_PLAYBOOK,
                                    env=dict(env, CHAOS_PUSHGATEWAY_REQUIRED="true"))
    required_output = required.stdout + required.stderr
    assert required.returncode == 2, required_output
    assert "pushgateway_required is set and the push of the run's metrics failed: chaos_report: could not push " \
           "metrics to the Pushgateway at %s" % url in required_output, required_output
    assert "[ERROR]: chaos_report: could not push" not in required_output, required_output  # no second push
    assert (tmp_path / "reports" / "chaos_report.md").exists()
    assert any(line.startswith("chaos_report: PASS") for line in required_output.splitlines()), required_output
    for text in [output, required.stdout + required.stderr] + [p.read_text() for p in (tmp_path / "reports").rglob("*") if p.is_file()]:
        assert token not in text


# -- a suite against the demo, pushed, scraped, and read back through the dashboard's queries ----

def test_dashboard_queries_return_the_pushed_run(run, prometheus_stack, tmp_path):
    job = "magsasa_chaos_%s" % uuid.uuid4().hex[:8]
    textfile = tmp_path / "chaos.prom"
    # the run's own environment: the harness passes none of the caller's CHAOS_* settings on
    env = {"CHAOS_PUSHGATEWAY_URL": prometheus_stack.gateway_url, "CHAOS_PUSHGATEWAY_JOB": job,
           "CHAOS_PUSHGATEWAY_GROUPING_KEY": "suite=monitoring", "CHAOS_PUSHGATEWAY_REQUIRED": "true",
           "CHAOS_PROMETHEUS_TEXTFILE": str(textfile)}
    try:
        result = run({"chaos_suite_scenarios": [
            scenario("Mon CPU", "cpu", 3, workers=1, load_percent=50),
            scenario("Mon Process Crash", "process", 4, signal="SIGKILL", wait_for_restart=20),
        ], "chaos_suite_groups": {"mon": ["Mon CPU", "Mon Process Crash"]}, "chaos_group": "mon"}, env=env)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        assert "metrics pushed to the Pushgateway at %s (job %s)" % (prometheus_stack.gateway_url, job) in result.stdout
        data = results(run.reports)
        assert {r["status"] for r in data["experiments"]} == {"completed"}, data["experiments"]

        families = parse_textfile(textfile)
        run_end = families["chaos_run_end_timestamp_seconds"].samples[0].value
        run_start = families["chaos_run_start_timestamp_seconds"].samples[0].value
        prometheus_stack.wait_for('chaos_run_end_timestamp_seconds{job="%s"}' % job,
                                  lambda r: r and float(r[0]["value"][1]) == run_end)

        outcomes = {}
        for record in data["experiments"]:
            outcome = "pass" if record["slo"]["verdict"] == "pass" else "fail"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        for template, expression in dashboard_expressions(job):
            series = prometheus_stack.query(expression)
            assert series, "the dashboard query %s returned no data" % template
            for item in series:
                labels, value = item["metric"], float(item["value"][1])
                assert labels.get("suite", "monitoring") == "monitoring", labels
                assert "targets" not in labels and "demo-local" not in labels.values(), labels
                if "scenario" in labels:
                    assert_matches_results(labels["__name__"], labels, value, data)
                elif "status" in labels:
                    assert value == outcomes.pop(labels["status"]), (item, outcomes)
                else:
                    assert value == pytest.approx(run_start * 1000), (template, item)
        assert not outcomes, "outcomes missing from Prometheus: %s" % outcomes
        mttr = {s["metric"]["scenario"] for s in prometheus_stack.query('chaos_mttr_seconds{job="%s"}' % job)}
        assert "Mon Process Crash" in mttr
        assert mttr == {r["name"] for r in data["experiments"] if r["metrics"]["mttr_seconds"] is not None}
    finally:
        prometheus_stack.delete(job)


# -- PromQL steady state and stop conditions ----------------------------------------------------

class CounterPusher(threading.Thread):
    """Pushes a request counter and an error counter for a job twice a second; ``fail()`` makes half
    of the new requests errors from then on."""

    def __init__(self, stack, job):
        super().__init__(daemon=True)
        self.stack, self.job = stack, job
        self.requests = self.errors = 0
        self.failing = threading.Event()
        self.done = threading.Event()
        self.push_errors = []

    def fail(self):
        self.failing.set()

    def run(self):
        deadline = time.time() + 300
        while not self.done.is_set() and time.time() < deadline:
            self.requests += 10
            if self.failing.is_set():
                self.errors += 5
            try:
                self.stack.push(self.job, "# TYPE demo_requests_total counter\ndemo_requests_total %d\n"
                                          "# TYPE demo_errors_total counter\ndemo_errors_total %d\n"
                                          % (self.requests, self.errors))
            except Exception as exc:  # a slow push on a busy machine: count it, keep the counters going
                self.push_errors.append(repr(exc))
            self.done.wait(0.5)


def injected(fault_state):
    """Whether a fault recorded in ``fault_state`` has taken effect."""
    for path in fault_state.glob("*.json"):
        try:
            if json.loads(path.read_text()).get("injected_at"):
                return True
        except ValueError:  # caught mid-write
            continue
    return False


def test_a_promql_stop_condition_aborts_the_experiment(run, prometheus_stack):
    job = "demo_traffic_%s" % uuid.uuid4().hex[:8]
    ratio = ('sum(rate(demo_errors_total{job="%s"}[5s])) / sum(rate(demo_requests_total{job="%s"}[5s]))'
             % (job, job))
    pusher = CounterPusher(prometheus_stack, job)
    pusher.start()
    proc = None
    try:
        prometheus_stack.wait_for('sum(rate(demo_requests_total{job="%s"}[5s])) > 0' % job)
        proc = run({
            "chaos_suite_scenarios": [scenario("Mon Abort CPU", "cpu", 60, workers=1, load_percent=30)],
            "chaos_suite_groups": {"mon": ["Mon Abort CPU"]}, "chaos_group": "mon",
            # A lease long enough for hold ticks on a busy machine: only the PromQL condition may end it.
            "chaos_experiment_lease": 30,
            "chaos_prometheus_url": prometheus_stack.prometheus_url,
            "chaos_steady_state": {"prometheus": [
                {"name": "demo serves traffic", "query": 'sum(rate(demo_requests_total{job="%s"}[5s]))' % job,
                 "op": ">", "threshold": 0}]},
            "chaos_abort": {"window": 50, "max_consecutive_failures": 600, "prometheus": [
                {"name": "error ratio above 5 percent", "query": ratio, "op": ">", "threshold": 0.05}]},
        }, background=True)
        # This experiment's own fault record, once injected: the targets inject together at a start
        # time a little after the record is written, and the fault window counts from then.
        deadline = time.time() + 90
        while time.time() < deadline and not injected(run.fault_state):
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        assert injected(run.fault_state), "the experiment never injected its fault"
        time.sleep(3)  # some hold ticks with a healthy ratio first
        pusher.fail()
        output = proc.communicate(timeout=400)[0]
    finally:
        pusher.done.set()
        pusher.join(timeout=5)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        prometheus_stack.delete(job)
    assert proc.returncode == 0, output[-4000:]
    assert len(pusher.push_errors) < 5, pusher.push_errors
    record = results(run.reports)["experiments"][0]
    assert record["status"] == "aborted", (record["status"], record["reason"], output[-3000:])
    assert "PromQL stop condition 'error ratio above 5 percent'" in record["reason"] and ratio in record["reason"]
    samples = record["prometheus_samples"]
    steady = [s for s in samples if s["purpose"] == "steady_state"]
    assert len(steady) == 1 and steady[0]["value"] > 0 and steady[0]["holds"], samples
    during = [s for s in samples if s["purpose"] == "stop_condition"]
    assert during[0]["value"] == 0 and not during[0]["holds"], during  # the pre-injection check and early ticks
    assert during[-1]["holds"] and during[-1]["value"] > 0.05, during
    # The breach was read during the fault, well before its planned end (60 s), and ended the hold.
    fault_start = record["window"]["fault_start"]
    assert fault_start + 3 <= during[-1]["at"] < fault_start + 55, (fault_start, during)
    assert len([s for s in during if s["holds"]]) == 1, "the hold went on after the breach: %s" % during
    report = (run.reports / "chaos_report.md").read_text()
    assert "ABORTED" in report and "error ratio above 5 percent" in report


@pytest.mark.parametrize("checks, message", [
    ({"query": "vector(1) > 0"}, None),
    ({"query": "sum(rate(x[5s])", "op": ">", "threshold": 1},
     "Prometheus rejected the PromQL expression 'sum(rate(x[5s])': invalid parameter \"query\": 1:16: parse error"),
    ({"query": "vector(1)[5s]"}, "ranges only allowed for vector selectors"),
    ({"query": "up[5s]"}, "PromQL expression 'up[5s]' returned a matrix; a check needs an instant vector or a scalar"),
    ({"query": "up", "op": ">"}, "parameters are required together: op, threshold"),
    ({"query": "up", "op": "=>", "threshold": 1}, "value of op must be one of: >, >=, <, <=, ==, !=, got: =>"),
])
def test_prometheus_query_module_against_a_real_prometheus(prometheus_stack, checks, message):
    result = run_module("prometheus_query", {"url": prometheus_stack.prometheus_url, "checks": [checks],
                                             "purpose": "stop_condition"})
    if message is None:
        assert not result.get("failed") and result["breached"], result
        assert result["samples"][0]["value"] == 1.0 and result["samples"][0]["holds"], result
    else:
        assert result.get("failed") and message in result["msg"], result


def test_an_unreachable_prometheus_is_named_in_the_error():
    url = "http://127.0.0.1:%d" % free_port()
    result = run_module("prometheus_query", {"url": url, "checks": [{"query": "up == 0"}], "timeout": 2})
    assert result.get("failed"), result
    assert result["msg"].startswith("cannot reach Prometheus at %s to evaluate 'up == 0': URLError" % url), result


@pytest.mark.parametrize("case", ["rejected", "not steady"])
def test_promql_bad_input_fails_before_injection(run, prometheus_stack, case):
    url = prometheus_stack.prometheus_url
    steady, abort = [], []
    if case == "rejected":
        abort = [{"query": "sum(rate(demo_requests_total[5s])", "op": ">", "threshold": 1}]
        message = "Prometheus rejected the PromQL expression 'sum(rate(demo_requests_total[5s])'"
    else:
        steady = [{"name": "never", "query": "vector(0)", "op": ">", "threshold": 1}]
        message = "steady state not met before injecting: PromQL steady-state check 'never': vector(0) is 0, needs > 1"
    result = run({"chaos_suite_scenarios": [scenario("Mon Bad", "cpu", 10, workers=1, load_percent=30)],
                  "chaos_suite_groups": {"mon": ["Mon Bad"]}, "chaos_group": "mon", "chaos_prometheus_url": url,
                  "chaos_steady_state": {"prometheus": steady},
                  "chaos_abort": {"window": 50, "max_consecutive_failures": 600, "prometheus": abort}})
    assert result.returncode != 0, result.stdout[-3000:]
    record = results(run.reports)["experiments"][0]
    assert record["status"] == "failed" and message in record["reason"], (record["reason"], result.stdout[-3000:])
    assert message in result.stdout
    assert not run.fault_state.exists(), "something was injected"
