"""An experiment that loses its SSH link to the target in the middle of a held fault.

The target is a container host reached over SSH (``ansible_connection: ssh``), so its control
connection is a network link. Mid-fault the test cuts that link with an nftables table of its own
(drop tcp to the container's port 22 in the host's output and forward hooks), outside the fault and
outside the engine. Lease renewals then fail: the fault must be reverted on the target by its
guard when the lease lapses, the host recorded as unreachable with the connection's own error, the
report written, and the run must exit non-zero. The test watches the target by paths the cut does
not touch: the fault state directory is a bind mount (so the lease file's mtime, the last renewal,
is read to the microsecond without a round trip) and its processes are listed with ``docker exec``.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest
import yaml

from harness import REPO_ROOT, Service, ansible_env, missing, require, require_docker, start_playbook

SSH_IMAGE = os.environ.get("MAGSASA_SSH_IMAGE", "magsasa/debian-ssh:bookworm")
STATE_IN_HOST = "/var/lib/lostlink-chaos"
LEASE = 3
TICK = 1
# The guard polls its lease every 0.2 s: it begins the revert within that poll (plus scheduling
# on a loaded machine) of the lease's end, and a memory fault's revert takes a fraction of a second.
GUARD_BOUND = 0.8
REVERT_BOUND = 1.5
# Seconds the held fault would last if nothing went wrong: far beyond lease + bound, so a revert
# within the bound can only be the lease's doing.
DURATION = 25
SSH_TIMEOUT = 2
SSH_OPTIONS = ["-o", "ConnectTimeout=%d" % SSH_TIMEOUT, "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


class SshHost:
    """One container host with sshd, its keys, and its fault state directory as seen from outside."""

    def __init__(self, client, root, name):
        self.client = client
        self.root = Path(root)
        self.state = self.root / "state"
        self.name = name
        self.container = None
        self.ip = None

    def active(self):
        return sorted(p.name[:-len(".json")] for p in self.state.glob("*.json"))

    def lease(self, fault_id):
        """``(content, mtime)`` of a fault's lease file (mtime: its last renewal), or ``(None, None)``."""
        path = self.state / (fault_id + ".lease")
        try:
            return path.read_text().strip(), path.stat().st_mtime
        except FileNotFoundError:
            return None, None

    def history(self, fault_id):
        return json.loads((self.state / "history" / (fault_id + ".json")).read_text())

    def pids(self):
        """``{pid: command line}`` in the container, through docker exec (not through the SSH link)."""
        result = self.container.exec_run(["ps", "-eo", "pid=,args="])
        assert result.exit_code == 0, result.output
        rows = (line.strip().split(None, 1) for line in result.output.decode(errors="replace").splitlines() if line.strip())
        return dict((int(row[0]), row[1] if len(row) > 1 else "") for row in rows)


def ensure_ssh_image():
    """The image of scripts/build-ssh-image.sh, built here when missing (it reaches the Debian mirror)."""
    client = require_docker()
    try:
        client.images.get(SSH_IMAGE)
        return client
    except Exception:  # docker.errors.ImageNotFound: build it
        pass
    build = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build-ssh-image.sh")], capture_output=True, text=True,
                           timeout=900, env=dict(os.environ, SSH_IMAGE=SSH_IMAGE))
    if build.returncode != 0:
        missing("image %s could not be built: %s" % (SSH_IMAGE, (build.stdout + build.stderr)[-600:]))
    return client


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory):
    if os.geteuid() != 0:
        missing("cutting the link with nftables needs root")
    client = ensure_ssh_image()
    for tool in ("ssh", "ssh-keygen", "nft"):
        require(tool, hint="apt-get install openssh-client nftables")
    root = tmp_path_factory.mktemp("lostlink")
    keys = root / "keys"
    keys.mkdir()
    (root / "state").mkdir()
    for key in (keys / "ssh_host_ed25519_key", root / "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    shutil.copy(str(root / "client_key.pub"), str(keys / "authorized_keys"))
    host = SshHost(client, root, "lostlink-%s" % uuid.uuid4().hex[:6])
    try:
        host.container = client.containers.run(SSH_IMAGE, name=host.name, detach=True, init=True,
                                               volumes={str(keys): {"bind": "/etc/ssh/keys", "mode": "ro"},
                                                        str(host.state): {"bind": STATE_IN_HOST, "mode": "rw"}})
        host.container.reload()
        host.ip = host.container.attrs["NetworkSettings"]["IPAddress"]
        assert host.ip, "the container has no address on the default bridge"
        deadline = time.time() + 30
        while True:
            probe = subprocess.run(["ssh", "-i", str(root / "client_key")] + SSH_OPTIONS + ["root@" + host.ip, "true"],
                                   capture_output=True, text=True, timeout=30)
            if probe.returncode == 0:
                break
            assert time.time() < deadline, "sshd in %s never answered: %s" % (host.name, probe.stderr)
            time.sleep(0.3)
        yield host
    finally:
        if host.container is not None:
            host.container.remove(force=True)
        assert not client.containers.list(all=True, filters={"name": host.name}), "container %s left behind" % host.name


def nft_tables():
    listing = subprocess.run([require("nft"), "list", "tables"], capture_output=True, text=True, check=True).stdout
    return listing.split("\n")


def cut_link(table, ip):
    """Drop every packet to the host's SSH port, locally sent or forwarded (the test's own table)."""
    rules = ("table inet %(t)s {\n"
             "  chain output { type filter hook output priority 0; policy accept; ip daddr %(ip)s tcp dport 22 drop; }\n"
             "  chain forward { type filter hook forward priority 0; policy accept; ip daddr %(ip)s tcp dport 22 drop; }\n"
             "}\n") % {"t": table, "ip": ip}
    subprocess.run([require("nft"), "-f", "-"], input=rules, text=True, check=True)


def ssh_processes(control_dir):
    """Processes of this controller still holding an SSH connection to the lost host."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(control_dir) in arg for arg in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_a_lost_ssh_link_ends_with_the_fault_reverted_by_its_lease(ssh_host, tmp_path):
    table = "lostlink_%s" % uuid.uuid4().hex[:8]
    control_dir = tmp_path / "cp"
    control_dir.mkdir()
    target = Service()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"chaos_environment": "local", "chaos_target_url": target.url},
        "hosts": {ssh_host.name: {
            "ansible_connection": "ssh", "ansible_host": ssh_host.ip, "ansible_user": "root",
            "ansible_ssh_private_key_file": str(ssh_host.root / "client_key"),
            # Ansible passes its own ConnectTimeout (ansible_ssh_timeout, 10 s) before the common args
            "ansible_ssh_common_args": " ".join(SSH_OPTIONS), "ansible_ssh_timeout": SSH_TIMEOUT,
            "ansible_control_path_dir": str(control_dir),
            "ansible_host_key_checking": False, "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    scenario = {"name": "Lost Link Memory", "type": "memory", "intensity": "light", "targets": ssh_host.name,
                "duration": DURATION, "parameters": {"size_mb": 32, "min_available_mb": 64}}
    extra = {"chaos_suite_scenarios": [scenario], "chaos_suite_groups": {"t": [scenario["name"]]}, "chaos_group": "t",
             "chaos_experiment_baseline_seconds": 1, "chaos_experiment_recovery_samples": 2,
             "chaos_experiment_recovery_timeout": 5, "chaos_suite_pause_between": 0,
             "chaos_experiment_lease": LEASE, "chaos_experiment_tick": TICK,
             "chaos_experiment_state_dir": STATE_IN_HOST}
    reports = tmp_path / "reports"
    proc = start_playbook("chaos.yml", extra, inventory=inventory, env=ansible_env(CHAOS_REPORT_OUTPUT_DIR=reports),
                          merge_stderr=True)
    fault_pids = []
    try:
        # generous: on a machine loaded by other runs, preflight alone can take a minute
        deadline = time.time() + 180
        while time.time() < deadline and not ssh_host.active():
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            time.sleep(0.1)
        assert ssh_host.active(), "the fault never became active on %s" % ssh_host.name
        fault_id = ssh_host.active()[0]
        # held: the holder has renewed the lease (the file then promises the short lease, not the first one)
        while time.time() < deadline and ssh_host.lease(fault_id)[0] != str(LEASE):
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            time.sleep(0.1)
        assert ssh_host.lease(fault_id)[0] == str(LEASE), "the holder never renewed the lease"
        record = json.loads((ssh_host.state / (fault_id + ".json")).read_text())
        # the fault's own processes: the memory worker its revert stops, and its guard
        fault_pids = [int(step["pid"]) for step in record["revert"] if step.get("pid")] + [int(record["guard"]["pid"])]
        assert len(fault_pids) >= 2 and set(fault_pids) <= set(ssh_host.pids()), (record, ssh_host.pids())
        time.sleep(1.5)
        assert ssh_host.active() == [fault_id], "the fault ended before the link was cut"

        cut_link(table, ssh_host.ip)
        cut = time.time()
        gone = renewed = None
        # the last renewal is the lease file's last mtime before the guard removed it
        while time.time() < cut + DURATION and gone is None:
            renewed = ssh_host.lease(fault_id)[1] or renewed
            if not ssh_host.active():
                gone = time.time() - cut
            time.sleep(0.02)
        output = proc.communicate(timeout=240)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run([require("nft"), "delete", "table", "inet", table], capture_output=True)
        target.close()
    assert not [line for line in nft_tables() if table in line], "nft table %s left behind" % table

    # the guard on the target reverted the fault when the lease lapsed, not at the deadline
    history = ssh_host.history(fault_id)
    lapsed = history["reverted_at"] - cut
    assert renewed is not None and renewed <= cut + 1.0, "no lease renewal seen around the cut (%s, cut %s)" % (renewed, cut)
    released = history["revert_started_at"] - renewed
    print("link cut -> fault reverted by the guard %.2f s later (history), record gone after %s s; "
          "revert began %.2f s after the last renewal, lease %s s" % (lapsed, gone and round(gone, 2), released, LEASE))
    assert history["reverted_by"] == "guard:lease-expired", history
    # the guard acts when the last renewal's lease runs out: not before, and within its poll and a margin after
    assert LEASE <= released <= LEASE + GUARD_BOUND, "revert began %.2f s after the last renewal (lease %s s)" % (released, LEASE)
    assert 0 < lapsed <= LEASE + REVERT_BOUND, "reverted %.2f s after the cut (lease %s s)" % (lapsed, LEASE)
    assert gone is not None and gone <= LEASE + REVERT_BOUND + 1.0, "the record was still active %s s after the cut" % gone

    # the run noticed, recorded the host as unreachable with the connection's error, and wrote the report
    assert proc.returncode != 0, output[-4000:]
    results = json.loads((reports / "chaos_results.json").read_text())["experiments"]
    assert len(results) == 1, results
    experiment = results[0]
    assert experiment["status"] == "failed", experiment
    # observed metrics of a failed experiment carry no pass mark
    assert experiment["slo"]["verdict"] == "not judged", experiment["slo"]
    part = experiment["hosts"][0]
    assert part["host"] == ssh_host.name and part["status"] == "failed", part
    assert part["ended"] == "unreachable", part
    assert "ssh" in part["reason"].lower() and "%s port 22" % ssh_host.ip in part["reason"], part
    assert "renewals stopped" in part["reason"], part
    assert ssh_host.name in experiment["reason"] and "unreachable" in experiment["reason"], experiment["reason"]
    report = (reports / "chaos_report.md").read_text()
    assert "Lost Link Memory" in report and "unreachable" in report, report[-3000:]

    # nothing is left: no record, no lease file, no fault process, no SSH connection of the run
    assert not ssh_host.active(), ssh_host.active()
    assert ssh_host.lease(fault_id) == (None, None), "lease file left on the target"
    now = ssh_host.pids()
    left = [(pid, now[pid]) for pid in fault_pids if pid in now]
    assert not left, "fault processes left on the target: %s" % left
    # nor anything else the run started there (a watchdog, a helper): only the container's sshd remains
    strays = [(pid, args) for pid, args in now.items() if not args.startswith(("/sbin/docker-init", "sshd", "ps "))]
    assert not strays, "processes left on the target: %s" % strays
    deadline = time.time() + 10
    while ssh_processes(control_dir) and time.time() < deadline:
        time.sleep(0.2)
    assert not ssh_processes(control_dir), "ssh connections of the run left behind"
