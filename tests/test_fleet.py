"""Experiments over a fleet: real ansible-playbook runs against container hosts (docker connection,
the local base image) and a real HTTP service as the probe target.

One set of container hosts serves every test of this module. Each host's fault state directory is
a bind mount, so the test reads the hosts' own revert history (not the report) and watches the
faults disappear without going through the connection it measures.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from harness import (REPO_ROOT, QuietHandler, Service, ansible_env, playbook_command, require, require_image, run_playbook,
                     start_playbook)
from harness.containers import BASE_IMAGE, STATE_IN_HOST, inventory_hosts, remove_container_hosts, start_container_hosts
from harness.faults import probe_samplers

HOSTS = 6
FAST = {"chaos_experiment_baseline_seconds": 1, "chaos_experiment_recovery_samples": 2,
        "chaos_suite_pause_between": 0, "chaos_experiment_state_dir": STATE_IN_HOST}


class Fleet:
    def __init__(self, root, names, url):
        self.root = Path(root)
        self.names = names
        self.url = url
        self.inventory = self.root / "inventory.yml"

    def state(self, name):
        return self.root / "state" / name

    def history(self, name, fault_id):
        path = self.state(name) / "history" / (fault_id + ".json")
        return json.loads(path.read_text()) if path.exists() else None

    def active(self, names=None):
        return [str(p) for name in (names or self.names) for p in self.state(name).glob("*.json")]

    def write_inventory(self, **group_vars):
        hosts = inventory_hosts(self.names)
        inventory = {"all": {
            "vars": dict({"chaos_environment": "local", "chaos_target_url": self.url, "chaos_max_hosts": 20}, **group_vars),
            "children": {"fleet": {"hosts": dict((n, {}) for n in self.names[:5])},
                         "spare": {"hosts": {self.names[5]: {}}}},
            "hosts": hosts}}
        self.inventory.write_text(yaml.safe_dump(inventory))
        return self.inventory

    def command(self, extra, args=(), playbook=None):
        return playbook_command(playbook or "chaos.yml", self.inventory, dict(FAST, **extra), args)

    def run(self, reports, extra, args=(), env=None, timeout=300):
        return run_playbook("chaos.yml", dict(FAST, **extra), args, inventory=self.inventory, timeout=timeout,
                            env=env or ansible_env(CHAOS_REPORT_OUTPUT_DIR=reports))


@pytest.fixture(scope="module")
def fleet():
    client = require_image(BASE_IMAGE)
    root = tempfile.mkdtemp(prefix="fleet-test-")
    prefix = "fleet-%s" % uuid.uuid4().hex[:6]
    names = ["%s-%d" % (prefix, n) for n in range(1, HOSTS + 1)]
    target = Service()
    try:
        start_container_hosts(client, names, root)
        fleet = Fleet(root, names, target.url)
        fleet.write_inventory()
        yield fleet
    finally:
        target.close()
        left = remove_container_hosts(client, names)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, "fleet containers left behind: %s" % left


def memory_scenario(name, targets="fleet", duration=5, size_mb=16):
    return {"name": name, "type": "memory", "intensity": "light", "targets": targets, "duration": duration,
            "parameters": {"size_mb": size_mb, "min_available_mb": 64}}


def suite(*scenarios):
    return {"chaos_suite_scenarios": list(scenarios), "chaos_suite_groups": {"t": [s["name"] for s in scenarios]},
            "chaos_group": "t"}


def records(reports):
    return json.loads((Path(reports) / "chaos_results.json").read_text())["experiments"]


def assert_no_faults(fleet):
    assert not fleet.active(), "faults left on the hosts: %s" % fleet.active()


def held(fleet, names, record):
    fault_id = record["fault"]["fault_ids"][0]
    entries = {name: fleet.history(name, fault_id) for name in names}
    missing = [name for name, entry in entries.items() if entry is None]
    assert not missing, "no revert history on %s" % missing
    return entries


class DockerExecs:
    """dockerd's own exec_create events for some containers, while a run lasts."""

    def __init__(self, names):
        self.names = set(names)
        self.events = []
        self.proc = subprocess.Popen([require("docker"), "events", "--format", "{{json .}}", "--filter", "type=container",
                                      "--filter", "event=exec_create"], stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            name = event.get("Actor", {}).get("Attributes", {}).get("name")
            if name in self.names:
                self.events.append((event["timeNano"] / 1e9, name))

    def stop(self):
        time.sleep(0.5)  # the last events
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        return self.events


class Webhook(QuietHandler):
    """Keeps every POSTed JSON body with the peer address it came from."""

    def do_POST(self):  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append({"peer": self.client_address[0], "body": json.loads(body)})
        self.reply(200)


def test_five_hosts_are_injected_and_held_together(fleet, tmp_path):
    execs = DockerExecs(fleet.names[:5])
    webhook = Service(Webhook, path="/hooks/fleet", posts=[])
    try:
        result = fleet.run(tmp_path, dict(suite(memory_scenario("Fleet Memory", duration=5)),
                                          chaos_notify_webhook_url=webhook.url), args=("--forks", "10"))
    finally:
        events = execs.stop()
        webhook.close()
    # the plan is posted once per run, from the controller, not once from every target
    starts = [p for p in webhook.server.posts if p["body"].get("event") == "start"]
    assert [p["peer"] for p in starts] == ["127.0.0.1"], webhook.server.posts
    assert starts[0]["body"]["experiments"][0]["hosts"] == fleet.names[:5], starts[0]["body"]
    assert result.returncode == 0, result.stdout[-4000:]
    record = records(tmp_path)[0]
    assert record["status"] == "completed", record
    entries = held(fleet, fleet.names[:5], record)
    injected = [e["injected_at"] for e in entries.values()]
    assert max(injected) - min(injected) <= 2.0, injected
    for name, entry in entries.items():
        assert abs(entry["revert_started_at"] - entry["injected_at"] - 5) <= 1.0, (name, entry)
        # one renewal channel per host for the whole hold, not a docker exec per tick (5 ticks here)
        during = [at for at, host in events if host == name
                  and entry["injected_at"] + 0.5 <= at <= entry["revert_started_at"] - 0.5]
        assert len(during) <= 1, (name, len(during), "docker execs during a 5 s hold")
    assert fleet.history(fleet.names[5], record["fault"]["fault_ids"][0]) is None, "the spare host was faulted"
    assert [p["host"] for p in record["hosts"]] == fleet.names[:5]
    assert all(p["ended"] == "deadline" and p["status"] == "ok" for p in record["hosts"]), record["hosts"]
    # each host says how much of the lead it had left; the hosts that waited woke at the same
    # start_at, so their injections (from the hosts' own history) lie close together
    slack = {p["host"]: p["start_slack"] for p in record["hosts"]}
    assert all(isinstance(v, float) for v in slack.values()), slack
    waited = [entries[name]["injected_at"] for name, v in slack.items() if v >= 0]
    assert waited and max(waited) - min(waited) <= 1.0, (slack, waited)
    report = (tmp_path / "chaos_report.md").read_text()
    assert "injection spread" in report.lower() and fleet.names[0] in report
    assert_no_faults(fleet)


def test_limit_narrows_the_targets_and_skips_a_scenario_limited_away(fleet, tmp_path):
    chosen = fleet.names[1:3]
    result = fleet.run(tmp_path, suite(memory_scenario("Fleet Limited", duration=3),
                                       memory_scenario("Fleet Spare", targets="spare", duration=3)),
                       args=("--limit", ",".join(chosen)))
    assert result.returncode == 0, result.stdout[-4000:]
    limited, spare = records(tmp_path)
    faulted = [n for n in fleet.names if fleet.history(n, limited["fault"]["fault_ids"][0])]
    assert faulted == chosen
    assert limited["targets"] == chosen
    assert spare["status"] == "skipped" and "none of them in this run" in spare["reason"], spare
    assert "Fleet Spare" in (tmp_path / "chaos_report.md").read_text()
    assert_no_faults(fleet)


def test_fewer_forks_than_targets_and_a_blast_radius_cap(fleet, tmp_path):
    fleet.write_inventory(chaos_max_hosts=4)
    try:
        result = fleet.run(tmp_path, suite(memory_scenario("Fleet Capped", duration=4)), args=("--forks", "2"))
    finally:
        fleet.write_inventory()
    assert result.returncode == 0, result.stdout[-4000:]
    record = records(tmp_path)[0]
    assert record["targets"] == fleet.names[:4]
    assert "resolve to 5 hosts, more than chaos_max_hosts 4" in record["note"], record
    for name, entry in held(fleet, fleet.names[:4], record).items():
        assert abs(entry["revert_started_at"] - entry["injected_at"] - 4) <= 1.0, (name, entry)
        assert entry["reverted_by"] != "guard:lease-expired", (name, entry)
    assert fleet.history(fleet.names[4], record["fault"]["fault_ids"][0]) is None
    assert record["fault"]["injection_spread"] is not None
    assert "injection spread" in (tmp_path / "chaos_report.md").read_text().lower()
    assert_no_faults(fleet)


def renewed(fleet, name):
    leases = list(fleet.state(name).glob("*.lease"))
    return bool(leases) and all(p.read_text().strip() == "3" for p in leases)


def test_a_killed_controller_leaves_every_fault_reverted_within_5_seconds(fleet, tmp_path):
    names = fleet.names[:3]
    home = tmp_path / "home"
    home.mkdir()
    scenario = memory_scenario("Fleet Killed", targets=",".join(names), duration=120)
    env = ansible_env(CHAOS_REPORT_OUTPUT_DIR=str(tmp_path / "reports"), HOME=str(home))
    proc = start_playbook("chaos.yml", dict(FAST, **suite(scenario)), inventory=fleet.inventory, env=env,
                          merge_stderr=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and len(fleet.active(names)) < 3:
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            time.sleep(0.1)
        assert len(fleet.active(names)) == 3, "the faults never became active on all 3 hosts"
        # held: every host's holder has renewed its lease (the file then promises the 3 s lease)
        while time.time() < deadline and not all(renewed(fleet, name) for name in names):
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            time.sleep(0.1)
        assert all(renewed(fleet, name) for name in names), "the holders never renewed the leases"
        assert probe_samplers(home), "no probe sampler running"
        time.sleep(1.5)
        assert len(fleet.active(names)) == 3, "the faults ended before the controller was killed"
        killed = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        faults_gone = sampler_gone = None
        while time.time() < killed + 15 and (faults_gone is None or sampler_gone is None):
            now = time.time()
            if faults_gone is None and not fleet.active(names):
                faults_gone = now - killed
            if sampler_gone is None and not probe_samplers(home):
                sampler_gone = now - killed
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("after SIGKILL: faults reverted in %s s, probe sampler gone in %s s" % (faults_gone, sampler_gone))
    assert faults_gone is not None and faults_gone <= 5.0, "faults still active: %s (%s s)" % (fleet.active(names), faults_gone)
    assert sampler_gone is not None and sampler_gone <= 5.0, "probe sampler still running (%s s)" % sampler_gone
    for name in names:
        entries = [json.loads(p.read_text()) for p in (fleet.state(name) / "history").glob("fleet-killed-*.json")]
        assert entries and all(e["reverted_by"] == "guard:lease-expired" for e in entries), entries


def test_an_unreachable_host_fails_its_experiment_and_the_suite_goes_on(fleet, tmp_path):
    victim = fleet.names[4]
    scenarios = suite(memory_scenario("Fleet Lost Host", duration=8), memory_scenario("Fleet After Loss", duration=3))
    proc = start_playbook("chaos.yml", dict(FAST, **scenarios), inventory=fleet.inventory,
                          env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=tmp_path), merge_stderr=True)
    client = require_image(BASE_IMAGE)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not fleet.active([victim]):
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            time.sleep(0.1)
        client.containers.get(victim).stop(timeout=1)
        output = proc.communicate(timeout=240)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        client.containers.get(victim).start()
        # the stopped host lost its guard with its processes: its record is reverted by halt.yml
        halted = run_playbook("halt.yml", {"chaos_state_dir": STATE_IN_HOST}, ["--limit", victim],
                              inventory=fleet.inventory, timeout=120)
        assert halted.returncode == 0, halted.stdout[-2000:]
        assert not fleet.active([victim]), fleet.active([victim])
    assert proc.returncode != 0, output[-3000:]
    lost, after = records(tmp_path)
    # the next experiment cannot reach it at all: the docker connection's own message
    victim_after = [p for p in after["hosts"] if p["host"] == victim][0]
    assert "is not running" in victim_after["reason"], victim_after
    assert not after["fault"]["fault_ids"], "the experiment after the loss injected despite a failed preflight"
    for record in (lost, after):
        assert record["status"] == "failed", record
        part = [p for p in record["hosts"] if p["host"] == victim][0]
        assert part["status"] == "failed" and part["ended"] == "error", part
        assert part["reason"], part
        assert victim in record["reason"]
    others = fleet.names[:4]
    held(fleet, others, lost)
    assert all(p["status"] == "ok" for p in lost["hosts"] if p["host"] != victim), lost["hosts"]
    assert not fleet.active(others)
    assert not [n for n in others if fleet.history(n, after["fault"]["fault_ids"][0] if after["fault"]["fault_ids"] else "x")]
    assert (tmp_path / "chaos_report.md").exists()


def test_the_built_collection_runs_from_an_empty_collections_path(fleet, tmp_path):
    galaxy = require("ansible-galaxy")
    source = REPO_ROOT / "collections" / "ansible_collections" / "magsasa" / "chaos"
    # outside the project: its ansible.cfg and collections path must not be seen
    bare = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    built = subprocess.run([galaxy, "collection", "build", str(source), "--output-path", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=bare)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = next(tmp_path.glob("magsasa-chaos-*.tar.gz"))
    installed = tmp_path / "collections"
    # community.docker comes with the ansible package; there is no Galaxy to resolve it from here
    done = subprocess.run([galaxy, "collection", "install", str(tarball), "-p", str(installed), "--no-deps"],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=bare)
    assert done.returncode == 0, done.stdout + done.stderr
    root = installed / "ansible_collections" / "magsasa" / "chaos"
    assert (root / "roles" / "chaos_experiment").is_dir() and (root / "playbooks" / "chaos.yml").is_file()
    assert (root / "COPYING").is_file()
    env = dict(bare, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_CALLBACKS_ENABLED="magsasa.chaos.chaos_report",
               CHAOS_REPORT_OUTPUT_DIR=str(tmp_path / "reports"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS="10",
               PATH=os.pathsep.join([str(Path(require("ansible-playbook")).parent), os.environ.get("PATH", "")]))
    command = fleet.command(suite(memory_scenario("Fleet From Tarball", duration=2)), args=("--limit", fleet.names[0]),
                            playbook="magsasa.chaos.chaos")
    result = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    record = records(tmp_path / "reports")[0]
    assert record["status"] == "completed" and record["targets"] == [fleet.names[0]], record
    assert fleet.history(fleet.names[0], record["fault"]["fault_ids"][0])["reverted_by"] in ("guard:deadline", "chaos_faults:absent")
    assert (tmp_path / "reports" / "chaos_report.md").exists()
    assert not fleet.active([fleet.names[0]])
