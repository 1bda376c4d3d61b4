"""chaos_netem, live: real ansible-playbook runs acting in network namespaces this test creates
(two of them, joined by a veth pair), measured with real traffic between them.

Traffic goes only between those namespaces. Every namespace, server and fault is removed in
``finally``; a table of this collection left in a namespace fails the test. nftables is
required (a missing ``nft`` fails under CI=true); the tc netem test skips only when the kernel
lacks sch_netem.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from harness import REPO_ROOT, ansible_env, missing, require, task_results
from harness.faults import wait_history

PACKETS = 2000
TOLERANCE_POINTS = 3.0
TABLE_MARKERS = ("magsasa", "chaos")

UDP_RECEIVER = textwrap.dedent("""
    import socket, sys
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((sys.argv[1], 0))
    print(sock.getsockname()[1], flush=True)
    seen = set()
    sock.settimeout(float(sys.argv[2]))
    while True:
        try:
            seen.add(sock.recv(64))
        except socket.timeout:
            break
        sock.settimeout(1.0)
    print(len(seen), flush=True)
""")

UDP_SENDER = textwrap.dedent("""
    import socket, sys, time
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = (sys.argv[1], int(sys.argv[2]))
    for seq in range(int(sys.argv[3])):
        try:
            sock.sendto(b'%d' % seq, target)
        except OSError:
            pass  # an nftables drop on output answers sendto with EPERM
        if seq % 20 == 0:
            time.sleep(0.002)
""")

TCP_SERVER = textwrap.dedent("""
    import socket, sys, threading
    listeners = []
    for _ in range(int(sys.argv[1])):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(('::', 0))
        sock.listen(16)
        listeners.append(sock)
    print(' '.join(str(s.getsockname()[1]) for s in listeners), flush=True)
    def serve(sock):
        while True:
            conn, _peer = sock.accept()
            conn.sendall(b'ok')
            conn.close()
    for sock in listeners:
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
    sys.stdin.read()
""")

TCP_PROBE = textwrap.dedent("""
    import socket, sys, time
    family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(float(sys.argv[4]))
    if sys.argv[3]:
        sock.bind((sys.argv[3], 0))
    started = time.time()
    expect = sys.argv[5].encode()
    try:
        sock.connect((sys.argv[1], int(sys.argv[2])))
        ok = sock.recv(len(expect)) == expect
    except OSError:
        ok = False
    print('open' if ok else 'blocked', round((time.time() - started) * 1000, 2))
""")

FREE_PORT = "import socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); print(s.getsockname()[1])"




def run(argv, check=True, timeout=60, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError("%s exited %d: %s %s" % (" ".join(map(str, argv)), result.returncode,
                                                       result.stdout, result.stderr))
    return result


@pytest.fixture(scope="module")
def tools():
    if os.geteuid() != 0:
        missing("network namespaces and nftables need root")
    return {tool: require(tool, "apt-get install nftables iproute2") for tool in ("ip", "nft", "tc", "ansible-playbook")}


def sch_netem_probe(tools):
    """Try a netem qdisc once in a throwaway namespace: (available, stderr)."""
    netns = "chaos-t-%06x-probe" % random.getrandbits(24)
    run([tools["ip"], "netns", "add", netns])
    try:
        result = run([tools["ip"], "netns", "exec", netns, tools["tc"], "qdisc", "add", "dev", "lo", "root",
                      "netem", "delay", "1ms"], check=False)
        return result.returncode == 0, result.stderr.strip()
    finally:
        run([tools["ip"], "netns", "del", netns], check=False)


class Net(object):
    """Two namespaces, A (10.x.y.1) and B (10.x.y.2 and 10.x.y.3), on one veth pair."""

    def __init__(self, tools, tmp_path):
        self.tools = tools
        self.tmp = tmp_path
        suffix = "%06x" % random.getrandbits(24)
        self.a = "chaos-t-%s-a" % suffix
        self.b = "chaos-t-%s-b" % suffix
        prefix = "10.%d.%d" % (random.randint(16, 250), random.randint(0, 255))
        self.a_addr, self.b_addr, self.b_addr2 = prefix + ".1", prefix + ".2", prefix + ".3"
        prefix6 = "fd%02x:%04x:%04x::" % (random.getrandbits(8), random.getrandbits(16), random.getrandbits(16))
        self.a_addr6, self.b_addr6, self.b_addr6_2 = prefix6 + "1", prefix6 + "2", prefix6 + "3"
        self.state_dir = tmp_path / "state"
        self.processes = []
        self.plays = 0
        self.extra = []

    def setup(self):
        ip = self.tools["ip"]
        for netns in (self.a, self.b):
            run([ip, "netns", "add", netns])
            run([ip, "-n", netns, "link", "set", "lo", "up"])
        run([ip, "link", "add", "va", "netns", self.a, "type", "veth", "peer", "name", "vb", "netns", self.b])
        run([ip, "-n", self.a, "addr", "add", self.a_addr + "/24", "dev", "va"])
        run([ip, "-n", self.b, "addr", "add", self.b_addr + "/24", "dev", "vb"])
        run([ip, "-n", self.b, "addr", "add", self.b_addr2 + "/24", "dev", "vb"])
        run([ip, "-n", self.a, "addr", "add", self.a_addr6 + "/64", "dev", "va", "nodad"])
        run([ip, "-n", self.b, "addr", "add", self.b_addr6 + "/64", "dev", "vb", "nodad"])
        run([ip, "-n", self.b, "addr", "add", self.b_addr6_2 + "/64", "dev", "vb", "nodad"])
        run([ip, "-n", self.a, "link", "set", "va", "up"])
        run([ip, "-n", self.b, "link", "set", "vb", "up"])

    def teardown(self):
        """Remove everything; return what the faults left behind (must be nothing)."""
        leftovers = []
        for netns in [self.a, self.b] + self.extra:
            if os.path.exists("/run/netns/%s" % netns):
                leftovers += ["%s: table %s" % (netns, t) for t in self.tables(netns)]
        if self.state_dir.is_dir():
            sys.path.insert(0, str(REPO_ROOT / "collections"))
            from ansible_collections.magsasa.chaos.plugins.module_utils import _guard
            for record in _guard.list_records(str(self.state_dir)):
                leftovers.append("active fault record %s" % record["fault_id"])
                _guard.revert_fault(str(self.state_dir), record["fault_id"], "test-cleanup", timeout=10)
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A test that SIGKILLs a run's process group (a dead controller) leaves the run's Ansible
        # worker behind: workers run in sessions of their own. One in a long pause stays for good.
        plays = str(self.tmp / "play-")
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(arg.startswith(plays) for arg in proc.info["cmdline"] or []):
                    proc.kill()
            except psutil.Error:
                continue
        for netns in [self.a, self.b] + self.extra:
            run([self.tools["ip"], "netns", "del", netns], check=False)
        return leftovers

    def add_routed_namespace(self):
        """Namespace C behind B: B forwards between A's subnet and C's. Returns (netns, address)."""
        ip = self.tools["ip"]
        netns = self.a[:-1] + "c"
        self.extra.append(netns)
        prefix = "10.%d.%d" % (random.randint(16, 250), random.randint(0, 255))
        run([ip, "netns", "add", netns])
        run([ip, "-n", netns, "link", "set", "lo", "up"])
        run([ip, "link", "add", "vbc", "netns", self.b, "type", "veth", "peer", "name", "vc", "netns", netns])
        run([ip, "-n", self.b, "addr", "add", prefix + ".1/24", "dev", "vbc"])
        run([ip, "-n", netns, "addr", "add", prefix + ".2/24", "dev", "vc"])
        run([ip, "-n", self.b, "link", "set", "vbc", "up"])
        run([ip, "-n", netns, "link", "set", "vc", "up"])
        run([ip, "-n", netns, "route", "add", "default", "via", prefix + ".1"])
        run([ip, "-n", self.a, "route", "add", prefix + ".0/24", "via", self.b_addr])
        self.ns(self.b, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        return netns, prefix + ".2"

    # -- inspection ------------------------------------------------------------------
    def ns(self, netns, argv, **kwargs):
        return run([self.tools["ip"], "netns", "exec", netns] + list(argv), **kwargs)

    def tables(self, netns):
        listing = self.ns(netns, [self.tools["nft"], "list", "tables"]).stdout
        return [line.split()[-1] for line in listing.splitlines()
                if any(marker in line for marker in TABLE_MARKERS)]

    def root_qdisc(self, netns, dev):
        return self.ns(netns, [self.tools["tc"], "qdisc", "show", "dev", dev, "root"]).stdout.strip()

    # -- traffic -----------------------------------------------------------------------
    def background(self, netns, code, *args):
        proc = subprocess.Popen([self.tools["ip"], "netns", "exec", netns, sys.executable, "-c", code]
                                + [str(a) for a in args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, start_new_session=True)
        self.processes.append(proc)
        return proc

    def tcp_servers(self, netns, count):
        proc = self.background(netns, TCP_SERVER, count)
        return [int(p) for p in proc.stdout.readline().split()]

    def tcp_timed(self, netns, address, port, source="", timeout=1.5, expect="ok"):
        """("open"|"blocked", milliseconds) of one TCP connection and greeting from ``netns``."""
        state, millis = self.ns(netns, [sys.executable, "-c", TCP_PROBE, address, port, source, timeout,
                                        expect]).stdout.split()
        return state, float(millis)

    def tcp(self, netns, address, port, source="", timeout=1.5, expect="ok"):
        return self.tcp_timed(netns, address, port, source, timeout, expect)[0]

    def udp_received(self, sender, receiver, address, count=PACKETS):
        proc = self.background(receiver, UDP_RECEIVER, address, 3)
        port = int(proc.stdout.readline())
        self.ns(sender, [sys.executable, "-c", UDP_SENDER, address, port, count], timeout=60)
        received = int(proc.stdout.readline())
        proc.wait(timeout=10)
        return received

    # -- ansible ----------------------------------------------------------------------
    def env(self):
        return ansible_env(json=True, ANSIBLE_LOCAL_TEMP=self.tmp / "ansible-local",
                           # a new SSH connection per task, so a task after a cut proves new ones pass
                           ANSIBLE_SSH_ARGS="-o ControlMaster=no -o ControlPath=none")

    def playbook(self, tasks, inventory=None, netns=None, popen=False):
        """Run the tasks against localhost (connection local) or ``inventory``; ``netns`` runs
        ansible-playbook itself inside that namespace (a controller there)."""
        self.plays += 1
        path = self.tmp / ("play-%d.yml" % self.plays)
        path.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}], indent=1))
        argv = [self.tools["ansible-playbook"], "-i", inventory or "localhost,", str(path)]
        if inventory is None:
            argv += ["-e", json.dumps({"ansible_connection": "local", "ansible_python_interpreter": sys.executable})]
        if netns:
            argv = [self.tools["ip"], "netns", "exec", netns] + argv
        if popen:
            proc = subprocess.Popen(argv, env=self.env(), cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            self.processes.append(proc)
            return proc
        return task_results(run(argv, check=False, timeout=180, env=self.env(), cwd=str(REPO_ROOT)))

    def netem(self, netns=None, **options):
        args = dict(state_dir=str(self.state_dir), duration=120)
        if netns:
            args["netns"] = netns
        args.update(options)
        return {"magsasa.chaos.chaos_netem": args}

    def inject(self, netns, **options):
        result = self.playbook([self.netem(netns, **options)])[0]
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True
        return result

    def revert(self, fault_id):
        result = self.playbook([{"magsasa.chaos.chaos_netem": dict(state="absent", fault_id=fault_id,
                                                                   state_dir=str(self.state_dir))}])[0]
        assert not result.get("failed"), result.get("msg")
        assert result["reverted"] == [fault_id]


@pytest.fixture
def net(tools, tmp_path):
    net = Net(tools, tmp_path)
    leftovers = []
    try:
        net.setup()
        yield net
    finally:
        leftovers = net.teardown()
    assert not leftovers, "the faults left these behind: %s" % leftovers


def history(net, fault_id):
    """The fault's revert history entry. The reverter writes it just after its last revert step, so a
    test that saw the fault's effects go may look a moment before it is there."""
    return wait_history(str(net.state_dir), fault_id, timeout=5)


# ---------------------------------------------------------------- loss

@pytest.mark.parametrize("percent, direction, where", [(5, "egress", "sender"), (15, "ingress", "receiver"),
                                                       (30, "both", "sender")])
def test_random_loss_is_within_three_points_over_2000_packets(net, percent, direction, where):
    netns = net.a if where == "sender" else net.b
    result = net.inject(netns, loss_percent=percent, direction=direction)
    try:
        assert result["details"]["backend"] == "nftables"
        assert result["effect"]["present"] is True and result["effect"]["drop_rules"] == 1
        assert net.tables(netns) == [result["details"]["table"].split()[1]]
        received = net.udp_received(net.a, net.b, net.b_addr)
    finally:
        net.revert(result["fault_id"])
    assert net.tables(netns) == []
    loss = 100.0 * (PACKETS - received) / PACKETS
    print("loss %s %% (%s): measured %.2f %% over %d packets" % (percent, direction, loss, PACKETS))
    assert abs(loss - percent) <= TOLERANCE_POINTS, "target %s %%, measured %.2f %% (%d of %d received)" % (
        percent, loss, received, PACKETS)
    assert history(net, result["fault_id"])["revert_ok"] is True


# ---------------------------------------------------------------- partitions

def test_partition_drops_all_and_only_the_selected_cidr_both_ways(net):
    """B's first IPv4 and IPv6 addresses are cut from A, both ways, except one excluded port;
    B's second addresses, on the same link, still pass."""
    b_ports = net.tcp_servers(net.b, 2)
    (a_port,) = net.tcp_servers(net.a, 1)
    assert net.tcp(net.a, net.b_addr, b_ports[0]) == "open"
    assert net.tcp(net.a, net.b_addr6, b_ports[0]) == "open"
    assert net.udp_received(net.a, net.b, net.b_addr, 200) == 200
    peers = [net.b_addr, net.b_addr6 + "/128"]
    result = net.inject(net.a, partition=True, destinations=peers, sources=peers, exclude_ports=[b_ports[1]])
    try:
        assert result["details"]["direction"] == ["egress", "ingress"]
        cut = [net.tcp(net.a, net.b_addr, b_ports[0]), net.tcp(net.a, net.b_addr6, b_ports[0]),
               net.tcp(net.b, net.a_addr, a_port, source=net.b_addr),
               net.tcp(net.b, net.a_addr6, a_port, source=net.b_addr6)]
        udp_cut = net.udp_received(net.a, net.b, net.b_addr, 200)
        spared = [net.tcp(net.a, net.b_addr2, b_ports[0]), net.tcp(net.a, net.b_addr6_2, b_ports[0]),
                  net.tcp(net.b, net.a_addr, a_port, source=net.b_addr2),
                  net.tcp(net.a, net.b_addr, b_ports[1])]
        udp_spared = net.udp_received(net.a, net.b, net.b_addr2, 200)
    finally:
        net.revert(result["fault_id"])
    assert cut == ["blocked"] * 4 and udp_cut == 0, "traffic to/from %s passed the partition: %s" % (peers, cut)
    assert spared == ["open"] * 4 and udp_spared == 200, "traffic outside the partition was hit: %s" % spared
    assert net.tables(net.a) == []
    assert net.tcp(net.a, net.b_addr, b_ports[0]) == "open"
    assert net.tcp(net.a, net.b_addr6, b_ports[0]) == "open"


def test_partition_by_port_leaves_other_ports_alone(net):
    b_ports = net.tcp_servers(net.b, 2)
    (a_port,) = net.tcp_servers(net.a, 1)
    result = net.inject(net.a, partition=True, ports=[b_ports[0]])
    try:
        states = (net.tcp(net.a, net.b_addr, b_ports[0]), net.tcp(net.a, net.b_addr, b_ports[1]),
                  net.tcp(net.b, net.a_addr, a_port))
    finally:
        net.revert(result["fault_id"])
    assert states == ("blocked", "open", "open")
    assert net.tables(net.a) == []


def test_forwarded_traffic_is_cut_on_the_host_that_routes_it(net):
    """B routes between A and C (as a host routes to its containers): with ``forwarded`` the
    partition on B cuts A from C; without it B's own hooks never see that traffic."""
    routed, routed_addr = net.add_routed_namespace()
    (c_port,) = net.tcp_servers(routed, 1)
    (b_port,) = net.tcp_servers(net.b, 1)
    (a_port,) = net.tcp_servers(net.a, 1)
    assert (net.tcp(net.a, routed_addr, c_port), net.tcp(routed, net.a_addr, a_port)) == ("open", "open")
    cut_c = dict(partition=True, destinations=[routed_addr], sources=[routed_addr])
    host_only = net.inject(net.b, **cut_c)
    try:
        without_forwarded = net.tcp(net.a, routed_addr, c_port)
    finally:
        net.revert(host_only["fault_id"])
    routed_cut = net.inject(net.b, forwarded=True, **cut_c)
    try:
        with_forwarded = (net.tcp(net.a, routed_addr, c_port), net.tcp(routed, net.a_addr, a_port))
        unrelated = net.tcp(net.a, net.b_addr, b_port)
    finally:
        net.revert(routed_cut["fault_id"])
    assert without_forwarded == "open"
    assert with_forwarded == ("blocked", "blocked")
    assert unrelated == "open"
    assert net.tables(net.b) == []
    assert net.tcp(net.a, routed_addr, c_port) == "open"


# ---------------------------------------------------------------- the control channel

@pytest.fixture
def sshd(net, tools):
    """A real sshd in namespace B on a free port, root login with a key made here."""
    if not os.path.exists("/usr/sbin/sshd") or not shutil.which("ssh"):
        missing("openssh-server and openssh-client are needed (apt-get install openssh-server)")
    workdir = net.tmp / "ssh"
    workdir.mkdir()
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", workdir / "host_key"])
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", workdir / "client_key"])
    shutil.copy(str(workdir / "client_key.pub"), str(workdir / "authorized_keys"))
    port = int(net.ns(net.b, [sys.executable, "-c", FREE_PORT]).stdout)
    config = workdir / "sshd_config"
    config.write_text(textwrap.dedent("""
        Port %d
        ListenAddress 0.0.0.0
        HostKey %s
        PidFile %s
        AuthorizedKeysFile %s
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        LogLevel ERROR
    """ % (port, workdir / "host_key", workdir / "sshd.pid", workdir / "authorized_keys")))
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([tools["ip"], "netns", "exec", net.b, "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    net.processes.append(proc)
    deadline = time.time() + 10
    while net.tcp(net.a, net.b_addr, port, timeout=0.5, expect="SSH-") == "blocked" and time.time() < deadline:
        assert proc.poll() is None, "sshd exited: %s" % proc.stdout.read()
        time.sleep(0.1)
    options = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "LogLevel=ERROR"]

    def ssh_ok():
        result = net.ns(net.a, ["ssh", "-i", workdir / "client_key", "-p", port, "-o", "ConnectTimeout=3",
                                "-o", "ControlMaster=no", "-o", "ControlPath=none"] + options
                        + ["root@" + net.b_addr, "echo", "through"], check=False, timeout=30)
        return result.returncode == 0 and result.stdout.strip() == "through"

    inventory = workdir / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {net.b_addr: {
        "ansible_connection": "ssh", "ansible_port": port, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(workdir / "client_key"),
        "ansible_ssh_common_args": " ".join(options), "ansible_python_interpreter": sys.executable,
    }}}}))
    return dict(port=port, ssh_ok=ssh_ok, inventory=str(inventory))


def test_ssh_control_channel_from_ssh_connection_survives_a_full_cut(net, sshd):
    """The controller (in A) runs the module over SSH on B and cuts B off from A entirely: the
    spared SSH connection still works, new ones too, everything else between them is dropped."""
    (b_port,) = net.tcp_servers(net.b, 1)
    assert sshd["ssh_ok"]()
    tasks = [net.netem(partition=True, destinations=[net.a_addr], sources=[net.a_addr]),
             {"ansible.builtin.command": "true"}]
    inject, after = net.playbook(tasks, inventory=sshd["inventory"], netns=net.a)
    assert not inject.get("failed"), inject.get("msg")
    fault_id = inject["fault_id"]
    try:
        assert inject["details"]["control_channel_source"].startswith("SSH_CONNECTION")
        assert inject["details"]["spared"] == [{"address": net.a_addr, "port": sshd["port"]}]
        assert not after.get("failed"), "a new SSH connection after the cut failed: %s" % after.get("msg")
        assert sshd["ssh_ok"](), "ssh from the controller was cut"
        assert net.tcp(net.a, net.b_addr, b_port) == "blocked"
        assert net.tcp(net.a, net.b_addr2, b_port) == "blocked"
        assert net.udp_received(net.a, net.b, net.b_addr, 100) == 0
    finally:
        revert = net.playbook([{"magsasa.chaos.chaos_netem": dict(state="absent", fault_id=fault_id,
                                                                  state_dir=str(net.state_dir))}],
                              inventory=sshd["inventory"], netns=net.a)[0]
    assert revert.get("reverted") == [fault_id], revert
    assert net.tables(net.b) == []
    assert net.tcp(net.a, net.b_addr, b_port) == "open"


def test_control_channel_option_is_what_keeps_ssh_alive(net, sshd):
    cut_from_a = dict(partition=True, destinations=[net.a_addr], sources=[net.a_addr])
    unspared = net.inject(net.b, spare_control_channel=False, **cut_from_a)
    try:
        assert unspared["details"]["spared"] == []
        ssh_without = sshd["ssh_ok"]()
    finally:
        net.revert(unspared["fault_id"])
    spared = net.inject(net.b, control_channel={"address": net.a_addr, "port": sshd["port"]}, **cut_from_a)
    try:
        assert spared["details"]["control_channel_source"] == "control_channel"
        ssh_with = sshd["ssh_ok"]()
    finally:
        net.revert(spared["fault_id"])
    assert ssh_without is False, "ssh passed a partition that did not spare it"
    assert ssh_with is True, "ssh was cut although control_channel spared it"
    assert net.tables(net.b) == []


# ---------------------------------------------------------------- a dead controller

def test_sigkilled_controller_rules_are_gone_by_the_lease_end(net):
    (b_port,) = net.tcp_servers(net.b, 1)
    lease = 4.0
    proc = net.playbook([net.netem(net.a, partition=True, destinations=[net.b_addr], lease=lease),
                         {"ansible.builtin.pause": {"seconds": 120}}], popen=True)
    deadline = time.time() + 60
    while not net.tables(net.a):
        assert proc.poll() is None, "ansible-playbook ended early: %s" % proc.stderr.read().decode()
        assert time.time() < deadline, "the fault never appeared"
        time.sleep(0.1)
    record = None
    while record is None and time.time() < deadline:
        records = list(net.state_dir.glob("netem-*.json"))
        record = json.loads(records[0].read_text()) if records else None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert net.tcp(net.a, net.b_addr, b_port) == "blocked"
    lease_end = record["lease_expires_at"]
    while net.tables(net.a) and time.time() < lease_end + 5:
        time.sleep(0.1)
    gone_at = time.time()
    assert net.tables(net.a) == [], "the rules outlived the lease by more than 5 s"
    assert gone_at <= lease_end + 3, "reverted %.1f s after the lease end" % (gone_at - lease_end)
    assert history(net, record["fault_id"])["reverted_by"] == "guard:lease-expired"
    assert net.tcp(net.a, net.b_addr, b_port) == "open"


# ---------------------------------------------------------------- bad input, tc netem

def test_bad_input_fails_before_anything_is_injected(net, tools):
    netem_ok, probe_error = sch_netem_probe(tools)
    cases = [
        (dict(loss_percent=150), "`loss_percent` must be 0-100, got 150"),
        (dict(delay_ms=-5, interface="va"), "`delay_ms` must be 0 or more, got -5"),
        (dict(loss_percent=5, interface="nope0"), "`interface` nope0 does not exist in netns %s" % net.a),
        (dict(partition=True, destinations=["10.0.0.0/24", "10.0.0.300/24"]),
         "`destinations` must hold IP addresses or CIDRs, got '10.0.0.300/24'"),
        (dict(partition=True, ports=[80, 443], exclude_ports=[443]), "port 443 is in both `ports` and `exclude_ports`"),
        (dict(delay_ms=100, backend="nftables"), "`delay_ms`=100 cannot be done by the nftables backend"),
        (dict(delay_ms=100, interface="va", direction="ingress", backend="tc"), "the tc backend shapes egress only"),
        (dict(partition=True, backend="tc", interface="va"), "`partition` needs the nftables backend"),
    ]
    if not netem_ok:
        cases.append((dict(delay_ms=100, interface="va", backend="tc"), "kernel lacks sch_netem"))
    tasks = [dict(net.netem(net.a, **options), ignore_errors=True) for options, _message in cases]
    results = net.playbook(tasks)
    for (options, message), result in zip(cases, results):
        assert result.get("failed") is True, "%s was accepted" % options
        assert message in result["msg"], "%s: %s" % (options, result["msg"])
    if not netem_ok:
        assert "nftables backend does without netem" in results[-1]["msg"]
    assert net.tables(net.a) == []
    assert " 0: " in net.root_qdisc(net.a, "va") + " ", net.root_qdisc(net.a, "va")
    assert not net.state_dir.exists() or not list(net.state_dir.rglob("*.json")), "a fault record was written"


def test_tc_filters_classify_selected_excluded_and_spared_traffic(net, tools):
    """The u32 filters the tc backend builds, on the real kernel: an htb root stands in for the
    prio qdisc (whose band 4 would hold netem), and its per-class counters show where each kind
    of traffic went. Band 4: selected; band 1: excluded ports and the control channel; band 2:
    everything else (htb's default class, as prio's priomap would)."""
    sys.path.insert(0, str(REPO_ROOT / "collections"))
    from ansible_collections.magsasa.chaos.plugins.module_utils import _netem

    b_ports = net.tcp_servers(net.b, 2)
    (a_port,) = net.tcp_servers(net.a, 1)
    handle = 0x1a2
    commands = _netem.tc_commands("va", handle, ["delay", "100ms"],
                                  destinations=_netem.parse_networks("destinations", [net.b_addr]),
                                  exclude_ports=[b_ports[1]], spared=[dict(address=net.b_addr, port=a_port)])
    assert commands[0][8] == "prio" and commands[1][9] == "netem"
    tc = tools["tc"]
    net.ns(net.a, [tc, "qdisc", "add", "dev", "va", "root", "handle", "1a2:", "htb", "default", "2"])
    try:
        for band in (1, 2, 3, 4):
            net.ns(net.a, [tc, "class", "add", "dev", "va", "parent", "1a2:", "classid", "1a2:%d" % band,
                           "htb", "rate", "1gbit"])
        for argv in commands[2:]:
            net.ns(net.a, [tc] + argv[1:])

        def packets():
            listing = net.ns(net.a, [tc, "-s", "class", "show", "dev", "va"]).stdout
            counts = {}
            for block in listing.split("class htb ")[1:]:
                band = int(block.split()[0].split(":")[1])
                counts[band] = int(block.split(" pkt")[0].split()[-1])
            return counts

        def delta(action):
            before = packets()
            assert action() == "open"
            after = packets()
            return dict((band, after[band] - before[band]) for band in after)

        unselected = delta(lambda: net.tcp(net.a, net.b_addr2, b_ports[0]))
        excluded = delta(lambda: net.tcp(net.a, net.b_addr, b_ports[1]))
        spared = delta(lambda: net.tcp(net.b, net.a_addr, a_port, source=net.b_addr))
        selected = delta(lambda: net.tcp(net.a, net.b_addr, b_ports[0]))
    finally:
        net.ns(net.a, [tc, "qdisc", "del", "dev", "va", "root", "handle", "1a2:"], check=False)
    assert unselected[4] == 0 and unselected[2] > 0, unselected
    assert excluded[4] == 0 and excluded[1] > 0, excluded
    assert spared[4] == 0 and spared[1] > 0, spared
    assert selected[4] > 0, selected
    assert " 0: " in net.root_qdisc(net.a, "va") + " "


def test_tc_netem_delay_live(net, tools):
    netem_ok, probe_error = sch_netem_probe(tools)
    if not netem_ok:
        if "Specified qdisc kind is unknown" in probe_error:
            pytest.skip("kernel lacks sch_netem")
        pytest.fail("probing sch_netem failed for another reason: %s" % probe_error)
    (b_port,) = net.tcp_servers(net.b, 1)
    result = net.inject(net.a, interface="va", delay_ms=100, destinations=[net.b_addr])
    try:
        assert result["details"]["backend"] == "tc"
        netem = [q for q in result["effect"]["qdiscs"] if q["kind"] == "netem"]
        assert netem and netem[0]["netem"]["delay_ms"] == 100.0
        delayed = net.tcp_timed(net.a, net.b_addr, b_port, timeout=3)
        other = net.tcp_timed(net.a, net.b_addr2, b_port, timeout=3)
    finally:
        net.revert(result["fault_id"])
    assert delayed[0] == "open" and delayed[1] >= 100.0, delayed
    assert other[0] == "open" and other[1] < 50.0, other
    assert " 0: " in net.root_qdisc(net.a, "va") + " "


def test_check_mode_plans_and_an_identical_request_renews(net):
    fault = net.netem(net.a, partition=True, destinations=[net.b_addr], fault_id="netem-t-idem", lease=60)
    planned, injected, again, reverted, reverted_again = net.playbook([
        dict(fault, check_mode=True),
        fault,
        fault,
        {"magsasa.chaos.chaos_netem": dict(state="absent", fault_id="netem-t-idem", state_dir=str(net.state_dir))},
        {"magsasa.chaos.chaos_netem": dict(state="absent", fault_id="netem-t-idem", state_dir=str(net.state_dir))},
    ])
    assert planned["changed"] is True and "drop" in planned["plan"]["ruleset"]
    assert "table inet magsasa_chaos_netem_t_idem {" in planned["plan"]["ruleset"]
    assert injected["changed"] is True and injected["effect"]["present"] is True
    assert again["changed"] is False and again["renewed"] is True
    assert again["lease_expires_at"] >= injected["lease_expires_at"]
    assert reverted["changed"] is True and reverted["reverted"] == ["netem-t-idem"]
    assert reverted_again["changed"] is False and reverted_again["reverted"] == []
    assert net.tables(net.a) == []
    assert history(net, "netem-t-idem")["reverted_by"] == "module:absent"


def test_revert_commands_remove_only_their_own_objects_and_are_idempotent(net, tools):
    """The revert actions the guard runs, against real tables and qdiscs: they delete the fault's
    own table / root qdisc, leave others alone, and succeed when there is nothing left to do."""
    sys.path.insert(0, str(REPO_ROOT / "collections"))
    from ansible_collections.magsasa.chaos.plugins.module_utils import _netem

    def revert(script, **env):
        base = dict(os.environ, CHAOS_NETNS=net.a, CHAOS_IP=tools["ip"], CHAOS_NFT=tools["nft"], CHAOS_TC=tools["tc"])
        base.update(env)
        return run(["sh", "-c", script], check=False, env=base)

    table = _netem.table_name("netem-t-revert")
    net.ns(net.a, [tools["nft"], "-f", "-"], input="table inet %s { }\ntable inet magsasa_chaos_someone_else { }\n" % table)
    first = revert(_netem.nft_delete_script(), CHAOS_TABLE=table)
    second = revert(_netem.nft_delete_script(), CHAOS_TABLE=table)
    remaining = net.tables(net.a)
    net.ns(net.a, [tools["nft"], "delete", "table", "inet", "magsasa_chaos_someone_else"])
    assert (first.returncode, second.returncode) == (0, 0), (first.stderr, second.stderr)
    assert remaining == ["magsasa_chaos_someone_else"]

    # htb stands in for the fault's prio/netem root: the revert only matches on the handle.
    net.ns(net.a, [tools["tc"], "qdisc", "add", "dev", "va", "root", "handle", "1a2:", "htb"])
    not_ours = revert(_netem.tc_delete_script(), CHAOS_DEV="va", CHAOS_HANDLE="3a7")
    still_there = net.root_qdisc(net.a, "va")
    ours = revert(_netem.tc_delete_script(), CHAOS_DEV="va", CHAOS_HANDLE="1a2")
    again = revert(_netem.tc_delete_script(), CHAOS_DEV="va", CHAOS_HANDLE="1a2")
    device_gone = revert(_netem.tc_delete_script(), CHAOS_DEV="nope0", CHAOS_HANDLE="1a2")
    assert not_ours.returncode == 0 and still_there.startswith("qdisc htb 1a2: ")
    assert (ours.returncode, again.returncode, device_gone.returncode) == (0, 0, 0)
    assert " 0: " in net.root_qdisc(net.a, "va") + " "

    namespace_gone = revert(_netem.nft_delete_script(), CHAOS_TABLE=table, CHAOS_NETNS="chaos-t-no-such-ns")
    assert namespace_gone.returncode == 0
