"""Preflight end to end: chaos.yml refuses every kind of bad input before the first fault, passes a
scenario's options to its module exactly, and skips a scenario its target cannot run.

The target is this machine through a local-connection host of a small inventory each test writes;
the service under test is a real HTTP server the module starts. A run that refuses its input must
leave the fault state dir untouched: no fault record, no revert history.

The bad inputs are generated (``corpus()``): the scenario fields, the fault options of every type
(read from the modules' own documentation with ansible-doc), SLO targets, stop conditions,
selections and inventory values, plus values only a fault module's own checks can refuse (run in
check mode by preflight). Each goes through chaos.yml, two runs at a time.
"""

import copy
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from harness import REPO_ROOT, Service, ansible_env, require, run_playbook
from harness import faults as h

HOST = "preflight-target"
LIFECYCLE = {"state", "duration", "max_duration", "fault_id", "lease", "state_dir", "revert_timeout"}
TYPES = {
    "cpu": "chaos_cpu", "memory": "chaos_memory", "disk": "chaos_disk", "packet_loss": "chaos_netem",
    "network_delay": "chaos_netem", "partition": "chaos_netem", "process": "chaos_process",
    "database": "chaos_db", "container": "chaos_container",
}


@pytest.fixture(scope="module")
def healthy():
    """200 to every GET; the server remembers the X-Chaos-Probe header values it was sent."""
    with Service(path="/health") as server:
        yield server


@pytest.fixture(scope="module")
def service(healthy):
    return healthy.url, healthy.port


def write_inventory(directory, url, port, scratch, interpreter=sys.executable):
    """A one-host inventory: this machine as every group, SLOs and fault defaults of its own."""
    os.makedirs(os.path.join(directory, "group_vars", "all"), exist_ok=True)
    hosts = {"all": {"children": {g: {"hosts": {HOST: None}} for g in ("app", "db", "containers")},
                     "hosts": {HOST: {"ansible_connection": "local", "ansible_python_interpreter": interpreter}}}}
    settings = {
        "chaos_environment": "local",
        "chaos_target_url": url,
        "chaos_slo": {"mttr_seconds": 30, "max_error_rate_percent": 5, "min_availability_percent": 95,
                      "max_latency_degradation_ms": 500, "max_recovery_seconds": 10},
        "chaos_abort": {"window": 50, "max_consecutive_failures": 600},
        "chaos_max_hosts": 1,
        "chaos_fault_defaults": {
            "disk": {"path": scratch},
            "packet_loss": {"interface": "lo", "ports": [port], "backend": "nftables"},
            "partition": {"interface": "lo", "ports": [port], "backend": "nftables"},
            "network_delay": {"interface": "lo", "ports": [port]},
        },
    }
    with open(os.path.join(directory, "hosts.yml"), "w") as handle:
        json.dump(hosts, handle)
    with open(os.path.join(directory, "group_vars", "all", "chaos.yml"), "w") as handle:
        json.dump(settings, handle)
    return directory


@pytest.fixture(scope="module")
def target(service, tmp_path_factory):
    root = tmp_path_factory.mktemp("preflight")
    scratch = root / "scratch"
    scratch.mkdir()
    url, port = service
    return dict(inventory=write_inventory(str(root / "inventory"), url, port, str(scratch)), root=root,
                scratch=str(scratch), url=url, port=port)


def scenario(title, type_, duration=2, **parameters):
    return {"name": title, "type": type_, "intensity": "light", "targets": "app", "duration": duration,
            "parameters": parameters}


CATALOG = [
    scenario("PF CPU", "cpu", workers=1, load_percent=50),
    scenario("PF Memory", "memory", size_mb=16),
    scenario("PF Disk", "disk", workers=1, total_mb=4),
    scenario("PF Loss", "packet_loss", loss_percent=5),
    scenario("PF Delay", "network_delay", delay_ms=50),
    scenario("PF Partition", "partition", partition=True),
    scenario("PF Process", "process", cmdline_pattern="preflight-matches-nothing", signal="SIGKILL"),
    scenario("PF Database", "database", engine="postgresql", control="datadir", data_dir="/nonexistent"),
    scenario("PF Container", "container", name="preflight-none"),
]
BY_TYPE = {s["type"]: s["name"] for s in CATALOG}


def base_run():
    return {"chaos_suite_scenarios": copy.deepcopy(CATALOG),
            "chaos_suite_groups": {"pf_all": [s["name"] for s in CATALOG]},
            "chaos_group": "pf_all"}


def documented_options():
    """Each fault module's options, from its documentation (ansible-doc, not the code under test)."""
    modules = sorted(set("magsasa.chaos." + m for m in TYPES.values()))
    out = subprocess.run([require("ansible-doc"), "-j", "-t", "module"] + modules, cwd=str(REPO_ROOT),
                         env=ansible_env(), capture_output=True, text=True, check=True).stdout
    docs = json.loads(out)
    return {name.split(".")[-1]: docs[name]["doc"]["options"] for name in modules}


def corpus():
    """(id, changes to the run's extra vars, the field the message must name) for every bad input."""
    cases = []

    def case(case_id, change, field, select=None):
        cases.append((case_id, change, field, select))

    def in_scenario(name, **fields):
        def change(run):
            entry = next(s for s in run["chaos_suite_scenarios"] if s["name"] == name)
            for key, value in fields.items():
                if value is DROP:
                    entry.pop(key)
                else:
                    entry[key] = value
        return change

    def in_parameters(name, **parameters):
        def change(run):
            next(s for s in run["chaos_suite_scenarios"] if s["name"] == name)["parameters"].update(parameters)
        return change

    def set_var(**values):
        return lambda run: run.update(copy.deepcopy(values))

    # The scenario's own fields.
    bad_fields = {"type": ["gpu"], "intensity": ["extreme"], "targets": [""], "duration": [0, "soon", True],
                  "parameters": ["workers=2", [1, 2]], "probe": ["fast"], "slo": ["fast"]}
    for field, values in bad_fields.items():
        for value in values:
            case("scenario-%s-%s" % (field, json.dumps(value)), in_scenario("PF CPU", **{field: value}), field)
    for field in ("type", "targets", "duration"):
        case("scenario-%s-missing" % field, in_scenario("PF CPU", **{field: DROP}), "%s is required" % field)
    case("scenario-unknown-field", in_scenario("PF CPU", paramters={}), "paramters")
    case("scenario-custom-without-tasks-file", in_scenario("PF CPU", type="custom"), "tasks_file")

    # The fault options of every type, from the modules' documentation.
    docs = documented_options()
    case("cpu-experiment-option", in_parameters("PF CPU", fault_id="mine"), "parameters.fault_id")
    seen_modules = set()
    for kind, module in TYPES.items():
        name = BY_TYPE[kind]
        options = {k: v for k, v in docs[module].items() if k not in LIFECYCLE}
        case("%s-unknown-option" % kind, in_parameters(name, foo=1), "parameters.foo")
        if module in seen_modules:
            continue
        seen_modules.add(module)
        numeric = sorted(k for k, v in options.items() if v.get("type") in ("int", "float"))
        if numeric:
            case("%s-%s-not-a-number" % (kind, numeric[0]), in_parameters(name, **{numeric[0]: "many"}),
                 "parameters.%s" % numeric[0])
        chosen = sorted(k for k, v in options.items() if v.get("choices") and v.get("type", "str") == "str")
        if chosen:
            case("%s-%s-not-a-choice" % (kind, chosen[0]), in_parameters(name, **{chosen[0]: "bogus"}),
                 "parameters.%s" % chosen[0])

    # Values only the fault module's own checks refuse: preflight runs it in check mode on the target.
    case("cpu-load-percent-150", in_parameters("PF CPU", load_percent=150), "load_percent", select="PF CPU")
    case("cpu-workers-0", in_parameters("PF CPU", workers=0), "workers", select="PF CPU")
    case("memory-size-0", in_parameters("PF Memory", size_mb=0), "size_mb", select="PF Memory")
    case("disk-path-missing", in_parameters("PF Disk", path="/nonexistent/scratch"), "path", select="PF Disk")
    case("packet_loss-percent-150", in_parameters("PF Loss", loss_percent=150), "loss_percent", select="PF Loss")
    case("packet_loss-interface-missing", in_parameters("PF Loss", interface="pfnosuch0"), "interface", select="PF Loss")

    # SLO targets: out of range for every metric, of the wrong type, unknown; per scenario too.
    slo = {"mttr_seconds": -1, "max_error_rate_percent": 150, "min_availability_percent": 150,
           "max_latency_degradation_ms": -1, "max_recovery_seconds": 0}
    for metric, value in slo.items():
        case("slo-%s-%s" % (metric, value), set_var(chaos_slo={metric: value}), "chaos_slo.%s" % metric)
    case("slo-not-a-number", set_var(chaos_slo={"mttr_seconds": "fast"}), "chaos_slo.mttr_seconds")
    case("slo-unknown-metric", set_var(chaos_slo={"uptime": 99}), "chaos_slo.uptime")
    case("scenario-slo-out-of-range", in_scenario("PF CPU", slo={"min_availability_percent": 101}),
         "slo.min_availability_percent")

    # Stop conditions.
    for key, value in (("window", -1), ("max_error_rate_percent", 150),
                       ("max_consecutive_failures", 1), ("window", "wide"), ("windw", 5)):
        case("abort-%s-%s" % (key, value), set_var(chaos_abort={key: value}), "chaos_abort.%s" % key)

    # Selections.
    case("selection-unknown-group", set_var(chaos_group="nightly"), "chaos_group 'nightly'")
    case("selection-unknown-scenario", set_var(chaos_scenario="Meltdown"), "chaos_scenario 'Meltdown'")
    case("selection-intensity-matches-nothing", set_var(chaos_intensity="heavy"), "chaos_intensity 'heavy'")
    case("selection-group-names-a-missing-scenario",
         lambda run: run["chaos_suite_groups"]["pf_all"].append("Meltdown"), "not in the catalog: Meltdown")
    case("selection-duplicate-names",
         lambda run: run["chaos_suite_scenarios"].append(copy.deepcopy(CATALOG[0])), 'appears 2 times')

    # Inventory values.
    case("inventory-max-hosts-0", set_var(chaos_max_hosts=0), "chaos_max_hosts")
    case("inventory-target-url-ftp", set_var(chaos_target_url="ftp://127.0.0.1/health"), "chaos_target_url")
    case("inventory-target-url-empty", set_var(chaos_target_url=""), "chaos_target_url")
    case("inventory-fault-defaults-unknown-type", set_var(chaos_fault_defaults={"packet_los": {}}),
         "chaos_fault_defaults.packet_los")
    case("inventory-fault-defaults-unknown-option",
         set_var(chaos_fault_defaults={"packet_loss": {"interface": "lo", "bogus": 1}}),
         "chaos_fault_defaults.packet_loss.bogus")
    case("inventory-probe-unknown-option", set_var(chaos_probe={"verb": "GET"}), "chaos_probe.verb")
    case("inventory-probe-headers-not-a-mapping", set_var(chaos_probe={"headers": "x"}), "chaos_probe.headers")
    case("inventory-lease-below-tick", set_var(chaos_experiment_lease=1), "chaos_experiment_lease")
    return cases


DROP = object()
CORPUS = corpus()


def chaos(target, extra, state_dir, reports, args=(), env=None, inventory=None):
    extra = dict({"chaos_experiment_state_dir": str(state_dir), "chaos_experiment_baseline_seconds": 1,
                  "chaos_experiment_tick": 2, "chaos_experiment_lease": 8, "chaos_suite_pause_between": 0,
                  "chaos_experiment_recovery_timeout": 10}, **extra)
    return run_playbook("chaos.yml", extra, args=("-i", inventory or target["inventory"]) + tuple(args),
                        env=env or ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(reports)), timeout=300)


def traces(state_dir):
    """Fault records and revert history a run left in its state dir (none, when nothing was injected)."""
    if not os.path.isdir(str(state_dir)):
        return []
    found = []
    for base, dummy, files in os.walk(str(state_dir)):
        found += [os.path.join(base, f) for f in files if f.endswith(".json")]
    return found


def fault_processes():
    found = []
    for proc in psutil.process_iter(["pid", "environ"]):
        try:
            if "MAGSASA_CHAOS_FAULT_ID" in (proc.info["environ"] or {}):
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found


@pytest.fixture(scope="module")
def corpus_runs(target):
    """Every bad input through chaos.yml, two runs at a time; each with its own state dir."""
    def one(item):
        case_id, change, field, select = item
        run = base_run()
        change(run)
        if select:
            run["chaos_scenario"] = select
        state_dir = target["root"] / "state" / case_id
        started = time.time()
        result = chaos(target, run, state_dir, target["root"] / "reports" / case_id)
        return case_id, dict(result=result, seconds=time.time() - started, traces=traces(state_dir))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, CORPUS))


def test_the_corpus_is_generated_and_covers_every_category():
    assert len(CORPUS) >= 60
    prefixes = set(case_id.split("-")[0] for case_id, dummy, dummy, dummy in CORPUS)
    assert {"scenario", "slo", "abort", "selection", "inventory"} <= prefixes
    assert set(TYPES) <= prefixes


@pytest.mark.parametrize("case_id, field", [(c[0], c[2]) for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_input_stops_the_run_before_anything_is_injected(corpus_runs, case_id, field):
    run = corpus_runs[case_id]
    output = run["result"].stdout + run["result"].stderr
    assert run["result"].returncode != 0, output[-3000:]
    assert field in output, output[-3000:]
    assert run["traces"] == [], "something was injected: %s" % run["traces"]
    assert "Inject the scenario's fault" not in output


def test_a_group_whose_second_scenario_is_invalid_injects_nothing(target, tmp_path):
    run = base_run()
    run["chaos_suite_scenarios"][0]["parameters"] = {"workers": 1, "load_percent": 50}
    run["chaos_suite_scenarios"][1] = scenario("PF CPU Overload", "cpu", workers=1, load_percent=150)
    run["chaos_suite_groups"] = {"two": ["PF CPU", "PF CPU Overload"]}
    run["chaos_group"] = "two"
    home = tmp_path / "home"
    home.mkdir()
    result = chaos(target, run, tmp_path / "faults", tmp_path / "reports",
                   env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(tmp_path / "reports"), HOME=str(home)))
    assert result.returncode != 0
    assert "PF CPU Overload" in result.stdout and "`load_percent` must be 1-100, got 150" in result.stdout, \
        result.stdout[-3000:]
    assert traces(tmp_path / "faults") == []
    assert not fault_processes()
    assert "Inject the scenario's fault" not in result.stdout
    # The first experiment's probe started before the targets' checks (its baseline); the refusal
    # stopped it and removed its directory.
    started = result.stdout.split("Start the first experiment's background probe", 1)[-1].split("TASK [", 1)[0]
    assert "changed: [" in started, result.stdout[-3000:]
    probes = home / ".ansible" / "magsasa_chaos" / "probes"
    assert probes.is_dir() and list(probes.iterdir()) == [], list(probes.iterdir())
    assert not h.probe_samplers(home)


def test_checks_run_side_by_side_keep_each_verdict_with_its_scenario(target, tmp_path):
    """The target's fault checks go out side by side (pipelining, no become): each module's refusal
    must still be reported for its own scenario, whatever order the runs finish in."""
    run = base_run()
    refused = {"PF CPU": ("workers", 0), "PF Memory": ("size_mb", 0), "PF Loss": ("loss_percent", 150),
               "PF Disk": ("path", "/nonexistent/scratch")}
    accepted = ["PF Delay", "PF Partition"]
    for entry in run["chaos_suite_scenarios"]:
        if entry["name"] in refused:
            key, value = refused[entry["name"]]
            entry["parameters"][key] = value
    run["chaos_suite_groups"] = {"six": sorted(refused) + accepted}
    run["chaos_group"] = "six"
    result = chaos(target, run, tmp_path / "faults", tmp_path / "reports")
    assert result.returncode != 0, result.stdout[-3000:]
    fatal = [line for line in result.stdout.splitlines() if line.startswith("fatal:") and "problem(s)" in line]
    assert len(fatal) == 1, result.stdout[-3000:]
    problems = json.loads(fatal[0].split("=> ", 1)[1])["msg"][1:]
    assert len(problems) == len(refused), problems
    for name, (key, value) in refused.items():
        mine = [p for p in problems if p.startswith("scenario '%s' on" % name)]
        assert len(mine) == 1 and key in mine[0], (name, problems)
    assert not [p for p in problems if any("'%s'" % name in p for name in accepted)], problems
    assert traces(tmp_path / "faults") == []


def test_falsy_options_reach_the_module_exactly(target, tmp_path):
    marker = "preflight-victim-%s" % uuid.uuid4().hex[:8]
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    try:
        run = base_run()
        # "[p]reflight" matches the victim's argv but not itself, so not the ansible-playbook whose
        # extra vars carry the pattern (chaos_process refuses to kill its own Ansible processes).
        pattern = "[p]" + marker[1:]
        run["chaos_suite_scenarios"] = [scenario("PF Kill", "process", duration=3, cmdline_pattern=pattern,
                                                 signal="SIGKILL", wait_for_restart=0)]
        run["chaos_suite_groups"] = {"one": ["PF Kill"]}
        run["chaos_group"] = "one"
        result = chaos(target, run, tmp_path / "faults", tmp_path / "reports")
        assert result.returncode == 0, result.stdout[-3000:]
        assert victim.wait(timeout=10) == -9
        history = [p for p in traces(tmp_path / "faults") if os.sep + "history" + os.sep in p]
        assert len(history) == 1, traces(tmp_path / "faults")
        with open(history[0]) as handle:
            record = json.load(handle)
        # wait_for_restart 0 was once dropped for the module default of 30 s, and chaos_process
        # stretches a fault to outlive its wait by 5 s: 35 s then, 5 s now.
        assert record["plan"]["wait_for_restart"] == 0
        assert record["identity"]["wait_for_restart"] == 0
        assert record["duration"] == 5
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_without_nft_packet_loss_is_skipped_with_the_fix_and_the_rest_runs(target, healthy, tmp_path):
    require("unshare")
    # The target's modules run in a mount namespace where /usr/sbin/nft (wherever nft is) is not
    # an executable: a machine without nftables, for this host only.
    nft = require("nft")
    blank = tmp_path / "not-nft"
    blank.write_text("")
    interpreter = tmp_path / "python-without-nft"
    interpreter.write_text("#!/bin/sh\nexec unshare --mount --propagation private sh -c "
                           "'mount --bind %s %s && exec \"$0\" \"$@\"' %s \"$@\"\n" % (blank, nft, sys.executable))
    interpreter.chmod(0o755)
    inventory = write_inventory(str(tmp_path / "inventory"), target["url"], target["port"], target["scratch"],
                                interpreter=str(interpreter))
    run = base_run()
    run["chaos_suite_groups"] = {"two": ["PF Loss", "PF CPU"]}
    run["chaos_group"] = "two"
    # Probe options pass through too: the inventory's, overridden by the scenario's.
    run["chaos_probe"] = {"headers": {"X-Chaos-Probe": "inventory"}, "method": "GET", "validate_certs": False}
    run["chaos_suite_scenarios"][0]["probe"] = {"headers": {"X-Chaos-Probe": "scenario"}}
    healthy.server.probe_headers.clear()
    reports = tmp_path / "reports"
    result = chaos(target, run, tmp_path / "faults", reports, inventory=inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    with open(str(reports / "chaos_results.json")) as handle:
        records = {r["name"]: r for r in json.load(handle)["experiments"]}
    assert records["PF Loss"]["status"] == "skipped"
    assert "nft is not installed: install nftables" in records["PF Loss"]["reason"]
    assert records["PF CPU"]["status"] == "completed", records["PF CPU"]
    assert healthy.server.probe_headers == {"scenario"}
    history = [p for p in traces(tmp_path / "faults") if os.sep + "history" + os.sep in p]
    assert len(history) == 1 and os.path.basename(history[0]).startswith("pf-cpu-")
    assert not fault_processes()


def test_a_target_that_already_carries_a_fault_is_refused_by_every_experiment(target, tmp_path):
    """The active-fault lock: the run's preflight answers it for the first experiment, the second
    experiment asks the target again. Neither injects anything while another fault is active."""
    state_dir = tmp_path / "faults"
    (held,) = h.run_tasks(tmp_path, [h.task("chaos_memory", size_mb=8, duration=120, state_dir=str(state_dir))])
    try:
        assert held["changed"], held
        run = base_run()
        run["chaos_suite_groups"] = {"two": ["PF CPU", "PF Memory"]}
        run["chaos_group"] = "two"
        reports = tmp_path / "reports"
        home = tmp_path / "home"
        home.mkdir()
        result = chaos(target, run, state_dir, reports,
                       env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(reports), HOME=str(home)))
        # the first experiment took the preflight's answer, the second asked the target itself
        lock = re.findall(r"TASK \[magsasa.chaos.chaos_experiment : Active-fault lock[^\n]*\n(\w+):", result.stdout)
        assert lock == ["skipping", "ok"], lock
        # the first experiment's probe was started before the targets' preflight and taken over by
        # the experiment; the second started its own; both were stopped and their directories removed
        early = re.findall(r"TASK \[magsasa.chaos.chaos_experiment : Start the first experiment's background probe[^\n]*\n(\w+):",
                           result.stdout)
        own = re.findall(r"TASK \[magsasa.chaos.chaos_experiment : Start the background probe[^\n]*\n(\w+):", result.stdout)
        assert early == ["changed"] and own == ["skipping", "changed"], (early, own)
        probes = home / ".ansible" / "magsasa_chaos" / "probes"
        assert list(probes.iterdir()) == [], list(probes.iterdir())
        assert not h.probe_samplers(home)
        assert result.returncode != 0, result.stdout[-3000:]
        with open(str(reports / "chaos_results.json")) as handle:
            records = {r["name"]: r for r in json.load(handle)["experiments"]}
        for name in ("PF CPU", "PF Memory"):
            assert records[name]["status"] in ("error", "failed"), records[name]
            assert "already carry active faults" in records[name]["reason"], records[name]
            assert held["fault_id"] in records[name]["reason"], records[name]
        # nothing of the run's own: the one record is the fault held before it, and no history at all
        assert [r["fault_id"] for r in h.records(str(state_dir))] == [held["fault_id"]]
        assert [p for p in traces(state_dir) if os.sep + "history" + os.sep in p] == []
        assert [p.info["pid"] for p in fault_processes()
                if p.info["environ"].get("MAGSASA_CHAOS_FAULT_ID") != held["fault_id"]] == []
    finally:
        h.run_tasks(tmp_path, [h.task("chaos_faults", state="absent_all", state_dir=str(state_dir))])
    assert h.records(str(state_dir)) == []
    assert not fault_processes()


def test_an_experiment_whose_probe_cannot_start_is_recorded_once_as_failed(target, tmp_path):
    """A controller step of the experiment that fails for real (the probe cannot write its directory):
    each experiment is recorded once, failed with the module's own message, nothing is injected."""
    run = base_run()
    run["chaos_suite_groups"] = {"two": ["PF CPU", "PF Memory"]}
    run["chaos_group"] = "two"
    home = tmp_path / "home"
    (home / ".ansible" / "magsasa_chaos").mkdir(parents=True)
    # the probes' directory is a file: every probe start fails to create its directory
    (home / ".ansible" / "magsasa_chaos" / "probes").write_text("not a directory")
    reports = tmp_path / "reports"
    result = chaos(target, run, tmp_path / "faults", reports,
                   env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(reports), HOME=str(home)))
    assert result.returncode != 0, result.stdout[-3000:]
    # the probe the run's preflight starts for the first experiment failed too, and was let go: the
    # experiment started its own and reports that failure itself
    early = result.stdout.split("Start the first experiment's background probe", 1)[-1].split("TASK [", 1)[0]
    assert "...ignoring" in early, early
    with open(str(reports / "chaos_results.json")) as handle:
        records = json.load(handle)["experiments"]
    assert sorted(r["name"] for r in records) == ["PF CPU", "PF Memory"], records
    for record in records:
        assert record["status"] == "failed", record
        assert record["reason"].startswith("Start the background probe"), record
        assert "Not a directory" in record["reason"], record
    assert traces(tmp_path / "faults") == []
    assert not fault_processes()
