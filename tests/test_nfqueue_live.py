"""chaos_netem backend nfqueue, live: real ansible-playbook runs, a real NFQUEUE rule and the
userspace delayer, measured with real TCP connections - across a veth pair into network
namespaces this test creates (names start with ``nfq-``) and on the host's loopback, to a
loopback address and port the test owns.

Added latency per delayed packet is measured with an exchange whose delayed direction carries
one packet: the TCP connect time when only packets towards the server are selected (the SYN is
held; the SYN-ACK is not). Every namespace, server and fault is removed in ``finally``; a chain,
table, queue listener or delayer process left behind fails the test.
"""

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

from harness import missing, require
from test_netem_live import REPO_ROOT, Net, history, run

DELAY_MS = 200.0
CONNECTS = 12
DELAYER = "magsasa_chaos_nfqueue.py"

CONNECT_TIMES = textwrap.dedent("""
    import socket, sys, time
    times = []
    for _ in range(int(sys.argv[4])):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5)
        if sys.argv[3]:
            sock.bind((sys.argv[3], 0))
        started = time.monotonic()
        try:
            sock.connect((sys.argv[1], int(sys.argv[2])))
            times.append(round((time.monotonic() - started) * 1000, 3))
        except OSError:
            times.append(None)
        sock.close()
    print(' '.join(str(t) for t in times))
""")

LOOPBACK_SERVER = textwrap.dedent("""
    import socket, sys, threading
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((sys.argv[1], 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    def serve():
        while True:
            conn, _peer = sock.accept()
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()
""")


def added_bound(requested_ms):
    """The issue's bound on the added median: 5 % of the request or 2 ms, whichever is larger."""
    return max(0.05 * requested_ms, 2.0)


class NfqNet(Net):
    """Net of test_netem_live with namespaces named nfq-*, and residue checks for this backend."""

    def __init__(self, tools, tmp_path):
        super(NfqNet, self).__init__(tools, tmp_path)
        suffix = "%06x" % random.getrandbits(24)
        self.a, self.b = "nfq-%s-a" % suffix, "nfq-%s-b" % suffix

    def residue(self, netns=None):
        """Chains, tables, queue listeners and delayer processes of this backend that remain."""
        found = []
        prefix = [self.tools["ip"], "netns", "exec", netns] if netns else []
        for tool in ("iptables", "ip6tables"):
            listing = run(prefix + [tool, "-w", "-t", "mangle", "-S"]).stdout
            found += ["%s: %s" % (tool, line) for line in listing.splitlines() if "MCHAOS-" in line]
        if netns:
            found += ["nft table %s" % t for t in self.tables(netns)]
        queues = run(prefix + ["cat", "/proc/net/netfilter/nfnetlink_queue"]).stdout
        found += ["queue listener %s" % line.split()[:2] for line in queues.splitlines()
                  if line.split() and 28672 <= int(line.split()[0]) <= 32767]
        found += ["delayer process %d" % pid for pid in self.delayers()]
        return found

    def delayers(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    cmdline = handle.read().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(DELAYER.encode()) for part in cmdline) and str(self.state_dir).encode() in b" ".join(cmdline):
                pids.append(int(entry))
        return pids

    def connect_times(self, netns, address, port, count=CONNECTS, source=""):
        argv = [sys.executable, "-c", CONNECT_TIMES, address, port, source, count]
        output = (self.ns(netns, argv) if netns else run(argv)).stdout.split()
        return [None if value == "None" else float(value) for value in output]

    def background_host(self, code, *args):
        proc = subprocess.Popen([sys.executable, "-c", code] + [str(a) for a in args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.processes.append(proc)
        return proc

    def absent(self, fault_id):
        """chaos_netem state=absent, then chaos_faults state=absent (as the experiment role's
        rollback does), which finds the fault ended and says how."""
        result, again = self.playbook([
            {"magsasa.chaos.chaos_netem": dict(state="absent", fault_id=fault_id, state_dir=str(self.state_dir))},
            {"magsasa.chaos.chaos_faults": dict(state="absent", fault_ids=[fault_id], state_dir=str(self.state_dir))}])
        assert not result.get("failed"), result.get("msg")
        assert not again.get("failed") and again["reverted"] == [], again
        assert [e["fault_id"] for e in again["history"]] == [fault_id], again
        result["ended_by_chaos_faults"] = again["history"][0]
        return result


@pytest.fixture(scope="module")
def nfq(tmp_path_factory):
    if os.geteuid() != 0:
        missing("network namespaces, iptables and netfilter queues need root")
    tools = {tool: require(tool, "apt-get install iptables nftables iproute2")
             for tool in ("ip", "nft", "tc", "iptables", "ip6tables", "ansible-playbook")}
    net = NfqNet(tools, tmp_path_factory.mktemp("nfq"))
    leftovers = []
    try:
        net.setup()
        yield net
    finally:
        leftovers = net.teardown() + net.residue()
    assert not leftovers, "the faults left these behind: %s" % leftovers


def median_ok(times):
    assert None not in times, "a connection failed: %s" % times
    return statistics.median(times)


def test_delay_across_a_veth_pair_adds_the_requested_latency_per_packet_and_reverts(nfq):
    """200 ms on packets from A to B's first address: a connect from A (its SYN held) takes 200 ms
    more; B's second address is untouched; after the revert the latency is back and nothing remains."""
    (port,) = nfq.tcp_servers(nfq.b, 1)
    before = median_ok(nfq.connect_times(nfq.a, nfq.b_addr, port))
    result = nfq.inject(nfq.a, backend="auto", delay_ms=DELAY_MS, destinations=[nfq.b_addr], interface="va")
    try:
        details = result["details"]
        assert details["backend"] == result["plan"]["backend"] == "nfqueue", details
        assert details["queue_rule"] == "iptables"
        assert result["effect"]["listening"] is True and result["effect"]["delayer_alive"] is True
        assert result["effect"]["rules"] >= 3
        during = median_ok(nfq.connect_times(nfq.a, nfq.b_addr, port))
        other = median_ok(nfq.connect_times(nfq.a, nfq.b_addr2, port, count=4))
    finally:
        ended = nfq.absent(result["fault_id"])
    after = median_ok(nfq.connect_times(nfq.a, nfq.b_addr, port))
    added = during - before
    hold = ended["final_effects"][result["fault_id"]]["hold"]
    assert ended["ended_by_chaos_faults"]["final_effect"]["hold"] == hold
    assert ended["ended_by_chaos_faults"]["reverted_by"] == "module:absent"
    print("veth: connect median before %.2f ms, during %.2f ms (added %.2f), after %.2f; delayer hold p50 %s p95 %s"
          % (before, during, added, after, hold["p50_ms"], hold["p95_ms"]))
    assert abs(added - DELAY_MS) <= added_bound(DELAY_MS), "added %.2f ms for %s ms requested" % (added, DELAY_MS)
    assert abs(hold["p50_ms"] - DELAY_MS) <= added_bound(DELAY_MS), hold
    assert other < before + 20, "an unselected address was delayed: %.2f ms" % other
    assert after < before + 20, "latency not back after the revert: %.2f ms (before %.2f)" % (after, before)
    assert nfq.residue(nfq.a) == []


def test_delay_on_loopback_to_a_port_the_test_owns(nfq):
    """On the host's own loopback: only packets to one 127.x address and port are selected."""
    address = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(1, 254), random.randint(2, 254))
    server = nfq.background_host(LOOPBACK_SERVER, address)
    port = int(server.stdout.readline())
    before = median_ok(nfq.connect_times(None, address, port, source="127.0.0.1"))
    result = nfq.inject(None, backend="nfqueue", delay_ms=DELAY_MS, interface="lo", destinations=[address],
                        ports=[port])
    try:
        during = median_ok(nfq.connect_times(None, address, port, source="127.0.0.1"))
    finally:
        ended = nfq.absent(result["fault_id"])
    after = median_ok(nfq.connect_times(None, address, port, source="127.0.0.1"))
    added = during - before
    print("loopback: connect median before %.2f ms, during %.2f ms (added %.2f), after %.2f; delayer hold p50 %s"
          % (before, during, added, after, ended["final_effects"][result["fault_id"]]["hold"]["p50_ms"]))
    assert abs(added - DELAY_MS) <= added_bound(DELAY_MS), "added %.2f ms for %s ms requested" % (added, DELAY_MS)
    assert after < before + 20
    assert nfq.residue() == []


def test_sigkilled_delayer_leaves_traffic_flowing_and_the_guard_removes_the_rule(nfq):
    (port,) = nfq.tcp_servers(nfq.b, 1)
    result = nfq.inject(nfq.a, backend="nfqueue", delay_ms=DELAY_MS, destinations=[nfq.b_addr], duration=60)
    delayer = result["details"]["watch"][0]["pid"]
    os.kill(delayer, signal.SIGKILL)
    killed_at = time.time()
    flowing = nfq.connect_times(nfq.a, nfq.b_addr, port, count=3)
    while nfq.residue(nfq.a) and time.time() < killed_at + 5:
        time.sleep(0.1)
    cleaned_in = time.time() - killed_at
    ended = nfq.absent(result["fault_id"])
    assert None not in flowing and max(flowing) < 100, "traffic did not flow after the delayer died: %s" % flowing
    assert nfq.residue(nfq.a) == [], "the rule outlived the delayer by 5 s"
    print("delayer SIGKILLed: rule removed by the guard within %.2f s" % cleaned_in)
    assert ended["reverted"] == [] and ended["ended"]["reverted_by"] == "guard:helper-exited:nfqueue delayer"
    assert ended["ended_by_chaos_faults"]["reverted_by"] == "guard:helper-exited:nfqueue delayer"
    assert ended["ended"]["final_effect"]["state"] == "running", "the killed delayer's last counters are kept"
    assert history(nfq, result["fault_id"])["revert_ok"] is True


def test_sigkilled_controller_delay_is_reverted_by_the_lease(nfq):
    (port,) = nfq.tcp_servers(nfq.b, 1)
    lease = 4.0
    proc = nfq.playbook([nfq.netem(nfq.a, backend="nfqueue", delay_ms=DELAY_MS, destinations=[nfq.b_addr],
                                   lease=lease),
                         {"ansible.builtin.pause": {"seconds": 120}}], popen=True)
    deadline = time.time() + 60
    record = None
    while record is None:
        assert proc.poll() is None, "ansible-playbook ended early: %s" % proc.stderr.read().decode()
        assert time.time() < deadline, "the fault never became active"
        records = [json.loads(p.read_text()) for p in nfq.state_dir.glob("netem-*.json")]
        record = next((r for r in records if r.get("status") == "active"), None)
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    delayed = median_ok(nfq.connect_times(nfq.a, nfq.b_addr, port, count=2))
    lease_end = record["lease_expires_at"]
    while nfq.residue(nfq.a) and time.time() < lease_end + 5:
        time.sleep(0.1)
    gone_at = time.time()
    assert delayed >= DELAY_MS - added_bound(DELAY_MS), "the delay was not in effect: %.2f ms" % delayed
    assert nfq.residue(nfq.a) == [], "the rule or delayer outlived the lease by more than 5 s"
    assert gone_at <= lease_end + 3, "reverted %.1f s after the lease end" % (gone_at - lease_end)
    assert history(nfq, record["fault_id"])["reverted_by"] == "guard:lease-expired"
    assert median_ok(nfq.connect_times(nfq.a, nfq.b_addr, port, count=2)) < 50


def test_bad_input_fails_before_anything_is_injected(nfq):
    busy = nfq.background(nfq.a, textwrap.dedent("""
        import socket, sys
        sys.path.insert(0, sys.argv[1])
        from ansible_collections.magsasa.chaos.plugins.module_utils import _nfqueue
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _nfqueue.NETLINK_NETFILTER)
        sock.bind((0, 0))
        sock.send(_nfqueue.config_bind(31999))
        print(_nfqueue.parse_messages(sock.recv(4096))[0]['errno'], flush=True)
        sys.stdin.read()
    """), str(REPO_ROOT / "collections"))
    assert busy.stdout.readline().strip() == "0", "could not bind the test's own queue"
    cases = [
        (dict(delay_ms=100, queue_num=31999), "`queue_num` 31999 is already in use"),
        (dict(delay_ms=70000), "`delay_ms` must be more than 0 and at most 60000 for backend=nfqueue, got 70000"),
        (dict(delay_ms=50, jitter_ms=80), "`jitter_ms` must be at most `delay_ms` for backend=nfqueue"),
        (dict(delay_ms=50, queue_num=70000), "`queue_num` must be 0-65535, got 70000"),
        (dict(delay_ms=50, interface="va", destinations=["127.0.0.1"]),
         "the selection matches no packet: 127.0.0.1/32 are loopback addresses, which never cross interface va"),
        (dict(delay_ms=50, interface="lo", destinations=["192.0.2.99"]),
         "the selection matches no packet: on interface lo only this host's own addresses travel"),
        (dict(delay_ms=50, corrupt_percent=1), "`corrupt_percent`=1 cannot be done by the nfqueue backend"),
        (dict(partition=True), "`partition` needs the nftables backend (backend=nfqueue delays traffic"),
        (dict(delay_ms=50, forwarded=True), "`forwarded` is not supported by the nfqueue backend"),
    ]
    tasks = [dict(nfq.netem(nfq.a, backend="nfqueue", **options), ignore_errors=True) for options, _m in cases]
    results = nfq.playbook(tasks)
    busy.stdin.close()
    busy.wait(timeout=10)
    for (options, message), result in zip(cases, results):
        assert result.get("failed") is True, "%s was accepted" % options
        assert message in result["msg"], "%s: %s" % (options, result["msg"])
    assert nfq.residue(nfq.a) == []
    assert not nfq.state_dir.exists() or not list(nfq.state_dir.glob("*.json")), "a fault record was written"
