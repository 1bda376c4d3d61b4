"""Benchmark: the nfqueue delay backend - requested vs measured added latency, and packet rate.

Runs the real pieces chaos_netem's nfqueue backend injects - the iptables NFQUEUE rules from
the same builders, and the same delayer program, started as its own process - in network
namespaces it creates (``nfq-bench-*``, removed at the end), and prints two tables:

1. Added latency per delayed packet for 10, 50, 200 and 500 ms, without and with jitter, on
   the loopback of a namespace and across a veth pair into another: the median TCP connect
   time with the delay minus the median without it. Only packets towards the server are
   selected, so the delayed direction of a connect carries one packet (the SYN). Target: within
   5 % of the request or 2 ms, whichever is larger. The delayer's own hold times (p50/p95) too.
2. Packet rate: UDP at rising rates through a 50 ms delay across the veth pair for a few
   seconds each: sent, received, held by the delayer, dropped anywhere. The highest rate held
   with nothing lost and every packet delayed is the result. Target: at least 5,000 packets/s.

    .venv/bin/python bench/bench_delay.py [--connects 24] [--rates 2000,5000,10000,20000]

Needs root. A printed table, not a timed test: numbers depend on the machine and its load.
"""

import argparse
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'collections'))

from ansible_collections.magsasa.chaos.plugins.module_utils import _fault, _netem, _nfqueue  # noqa: E402

DELAYS = [(10, 0), (10, 2), (50, 0), (50, 10), (200, 0), (200, 20), (500, 0), (500, 50)]
QUEUE_NUM = 31500
RATE_DELAY_MS = 50.0
RATE_SECONDS = 3.0

CONNECT_TIMES = textwrap.dedent("""
    import socket, sys, threading, time
    address, port, count, workers, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    times, lock = [], threading.Lock()
    def worker(n):
        for _ in range(n):
            sock = socket.socket()
            sock.settimeout(10)
            if source:
                sock.bind((source, 0))
            started = time.monotonic()
            sock.connect((address, port))
            elapsed = (time.monotonic() - started) * 1000
            sock.close()
            with lock:
                times.append(elapsed)
    threads = [threading.Thread(target=worker, args=(count // workers + (i < count % workers),)) for i in range(workers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(' '.join('%.3f' % t for t in times))
""")

TCP_SERVER = textwrap.dedent("""
    import socket, sys
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('0.0.0.0', int(sys.argv[1])))
    sock.listen(512)
    while True:
        conn, _peer = sock.accept()
        conn.close()
""")

UDP_RECEIVER = textwrap.dedent("""
    import socket, sys
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.bind(('0.0.0.0', int(sys.argv[1])))
    print('ready', flush=True)
    sock.settimeout(float(sys.argv[2]))
    received = 0
    while True:
        try:
            sock.recv(2048)
            received += 1
        except socket.timeout:
            break
        sock.settimeout(1.5)
    print(received, flush=True)
""")

UDP_SENDER = textwrap.dedent("""
    import socket, sys, time
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 << 20)
    target, rate, seconds = (sys.argv[1], int(sys.argv[2])), float(sys.argv[3]), float(sys.argv[4])
    total = int(rate * seconds)
    payload = b'x' * 64
    started = time.monotonic()
    sent = 0
    while sent < total:
        due = int((time.monotonic() - started) * rate) + 1
        while sent < min(due, total):
            try:
                sock.sendto(payload, target)
                sent += 1
            except OSError:
                time.sleep(0.0005)
        time.sleep(0.0005)
    print(sent, round(time.monotonic() - started, 3), flush=True)
""")


def run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kwargs)


def ns(netns, argv, **kwargs):
    return run(['ip', 'netns', 'exec', netns] + list(argv), **kwargs)


def popen_ns(netns, argv):
    return subprocess.Popen(['ip', 'netns', 'exec', netns] + [str(a) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)


class Bench(object):
    def __init__(self):
        suffix = '%06x' % random.getrandbits(24)
        self.a, self.b = 'nfq-bench-%s-a' % suffix, 'nfq-bench-%s-b' % suffix
        self.a_addr = '10.251.%d.1' % random.randint(0, 255)
        self.b_addr = self.a_addr[:-1] + '2'
        self.tmp = tempfile.mkdtemp(prefix='nfq-bench-')
        self.processes = []

    def setup(self):
        for netns in (self.a, self.b):
            run(['ip', 'netns', 'add', netns])
            ns(netns, ['ip', 'link', 'set', 'lo', 'up'])
        run(['ip', 'link', 'add', 'va', 'netns', self.a, 'type', 'veth', 'peer', 'name', 'vb', 'netns', self.b])
        ns(self.a, ['ip', 'addr', 'add', self.a_addr + '/24', 'dev', 'va'])
        ns(self.b, ['ip', 'addr', 'add', self.b_addr + '/24', 'dev', 'vb'])
        ns(self.a, ['ip', 'link', 'set', 'va', 'up'])
        ns(self.b, ['ip', 'link', 'set', 'vb', 'up'])

    def teardown(self):
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for netns in (self.a, self.b):
            subprocess.run(['ip', 'netns', 'del', netns], capture_output=True)

    def background(self, netns, code, *args):
        proc = popen_ns(netns, [sys.executable, '-c', code] + list(args))
        self.processes.append(proc)
        return proc

    def start_fault(self, netns, delay_ms, jitter_ms, destination, port):
        """The delayer, then the rule (the order chaos_netem injects them in)."""
        stats = os.path.join(self.tmp, 'stats-%d' % len(self.processes))
        config = dict(queue_num=QUEUE_NUM, delay_ms=delay_ms, jitter_ms=jitter_ms, exit_at=time.time() + 600)
        # Installed as chaos_netem installs it: copied, with what it imports next to it.
        program = _fault.install_program(_nfqueue, _nfqueue.PROGRAM_FILENAME, self.tmp)
        delayer = popen_ns(netns, [sys.executable, program, 'run', stats, json.dumps(config)])
        self.processes.append(delayer)
        for _attempt in range(500):
            if os.path.exists(stats) and json.load(open(stats))['state'] == 'running':
                break
            time.sleep(0.01)
        base = 'MCHAOS-bench'
        rules = _netem.ipt_queue_rules(base, 4, ('egress',), QUEUE_NUM,
                                       destinations=_netem.parse_networks('destinations', [destination]),
                                       ports=[port], interface='lo' if destination.startswith('127.') else None)
        for argv in rules:
            ns(netns, ['iptables'] + argv)
        return delayer, stats, base

    def stop_fault(self, netns, fault):
        delayer, stats, base = fault
        hooks, chains = _netem.ipt_chains(base, ('egress',))
        env = dict(os.environ, CHAOS_IPTABLES='iptables', CHAOS_HOOKS=' '.join('%s=%s' % h for h in hooks.items()),
                   CHAOS_CHAINS=' '.join(chains), CHAOS_NETNS=netns, CHAOS_IP='ip')
        run(['sh', '-c', _netem.ipt_delete_script()], env=env)
        delayer.send_signal(signal.SIGTERM)
        delayer.wait(timeout=10)
        with open(stats) as handle:
            return json.load(handle)

    def connect_median(self, netns, address, port, count, workers):
        source = '127.0.0.1' if address.startswith('127.') else ''
        times = [float(t) for t in ns(netns, [sys.executable, '-c', CONNECT_TIMES, address, port, count, workers, source],
                                      timeout=300).stdout.split()]
        return statistics.median(times)

    # -- latency -------------------------------------------------------------------------
    def latency_rows(self, connects, delays):
        rows = []
        port = random.randint(20000, 29999)
        self.background(self.b, TCP_SERVER, port)
        self.background(self.a, TCP_SERVER, port)
        time.sleep(0.5)
        paths = [('loopback', self.a, '127.0.0.2'), ('veth into netns', self.a, self.b_addr)]
        for label, netns, address in paths:
            for delay, jitter in [d for d in DELAYS if d[0] in delays]:
                bound = max(0.05 * delay, 2.0)
                # The median of n holds spread evenly over +-jitter strays by about jitter/sqrt(n):
                # enough connects that this is a third of the bound.
                count = max(connects, int(math.ceil((3.0 * jitter / bound) ** 2)))
                workers = 8
                before = self.connect_median(netns, address, port, connects, workers)
                fault = self.start_fault(netns, delay, jitter, address, port)
                try:
                    during = self.connect_median(netns, address, port, count, workers)
                finally:
                    stats = self.stop_fault(netns, fault)
                added = during - before
                rows.append((label, delay, jitter, before, during, added, added - delay, bound,
                             stats['hold']['p50_ms'], stats['hold']['p95_ms'], abs(added - delay) <= bound))
        return rows

    # -- rate ----------------------------------------------------------------------------
    def rate_rows(self, rates):
        rows = []
        for rate in rates:
            port = random.randint(30000, 39999)
            receiver = self.background(self.b, UDP_RECEIVER, port, RATE_SECONDS + 5)
            receiver.stdout.readline()
            fault = self.start_fault(self.a, RATE_DELAY_MS, 0, self.b_addr, port)
            try:
                sent, elapsed = ns(self.a, [sys.executable, '-c', UDP_SENDER, self.b_addr, port, rate, RATE_SECONDS],
                                   timeout=120).stdout.split()
                received = int(receiver.stdout.readline())
                queue = ns(self.a, ['cat', _nfqueue.PROC_QUEUES]).stdout.split()
            finally:
                stats = self.stop_fault(self.a, fault)
            sent = int(sent)
            achieved = sent / float(elapsed)
            queue_dropped = int(queue[5]) + int(queue[6]) if len(queue) >= 7 else 0
            lost = sent - received
            undelayed = sent - stats['received']
            rows.append((rate, round(achieved), sent, received, stats['received'], lost, undelayed, queue_dropped,
                         stats['hold']['p50_ms'], stats['hold']['p95_ms'],
                         lost == 0 and undelayed == 0 and queue_dropped == 0 and stats['overruns'] == 0))
        return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--connects', type=int, default=24)
    parser.add_argument('--rates', default='2000,5000,10000,20000')
    parser.add_argument('--delays', default='10,50,200,500', help='requested delays in ms (each without and with jitter)')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root (network namespaces, iptables, netfilter queues)')
    bench = Bench()
    try:
        bench.setup()
        latency = bench.latency_rows(args.connects, [int(d) for d in args.delays.split(',')])
        rates = bench.rate_rows([int(r) for r in args.rates.split(',') if r])
    finally:
        bench.teardown()
    print('Added latency per delayed packet (TCP connect, SYN held): median with - median without, at least %d '
          'connects (more with jitter)' % args.connects)
    print('| path | requested ms | jitter ms | connect before ms | during ms | added ms | error ms | bound ms '
          '| delayer hold p50 | p95 | within |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for row in latency:
        print('| %s | %d | %d | %.2f | %.2f | %.2f | %+.2f | %.1f | %.2f | %.2f | %s |'
              % (row[:10] + ('yes' if row[10] else 'NO',)))
    print()
    print('Packet rate through a %d ms delay across the veth pair (UDP, 64-byte payload, %.0f s each)'
          % (RATE_DELAY_MS, RATE_SECONDS))
    print('| target pps | achieved pps | sent | received | held by delayer | lost | undelayed | kernel queue drops '
          '| hold p50 ms | p95 ms | clean |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for row in rates:
        print('| %d | %d | %d | %d | %d | %d | %d | %d | %.2f | %.2f | %s |'
              % (row[:10] + ('yes' if row[10] else 'NO',)))
    clean = [row[1] for row in rates if row[10]]
    print()
    print('Highest rate held without loss, every packet delayed: %s packets/s (target 5000)'
          % (max(clean) if clean else 'none'))
    within = all(row[10] for row in latency)
    print('Latency within bound on every row: %s' % ('yes' if within else 'NO'))
    return 0 if within and clean and max(clean) >= 5000 else 1


if __name__ == '__main__':
    sys.exit(main())
