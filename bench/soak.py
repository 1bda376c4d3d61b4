"""Soak: run a chaos suite against the demo N times back to back and show that nothing grows.

Starts a demo instance of its own (local mode, its own state dir and ports), then runs
``playbooks/chaos.yml`` against it --iterations times (default 10, the smoke suite) and prints,
after each run: wall time, the run's verdict, the demo's processes / open fds / RSS, the
controller's (ansible-playbook and its forks) peak processes / fds / RSS during the run, fault
processes left running, files in the fault state dir (history apart: it keeps the last 200 by
design), nftables tables and tc qdiscs of this run's faults, the host's totals of both (shared
with anything else on the machine), and containers. The verdict is "nothing grows" or the list
of columns that grew, each judged against the first run (a warm-up) with the tolerance in GROWTH:
a residue column (a fault process, a record, a table, a qdisc or a demo container left down) in any
run, a usage column (processes, fds, RSS) when even its lowest value over the last three runs is
above the reference: a leak raises that floor, a PostgreSQL worker that comes and goes does not.

    .venv/bin/python bench/soak.py [--iterations 10] [--group smoke_test] [--extra-vars JSON] [--json FILE]

A printed table, not a timed test (tests/test_soak.py runs a short one and asserts its verdict).
"""

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

# column: (absolute slack, relative slack) a later run may exceed the warm-up run by.
GROWTH = {
    'demo_procs': (2, 0.0),          # PostgreSQL starts autovacuum workers now and then
    'demo_fds': (16, 0.0),
    'demo_rss_mb': (8.0, 0.10),
    'ctl_procs': (4, 0.0),           # forks and module runs sampled at different moments
    'ctl_fds': (32, 0.10),
    'ctl_rss_mb': (16.0, 0.15),
    'fault_procs_left': (0, 0.0),
    'state_files': (0, 0.0),
    'run_tables': (0, 0.0),
    'run_qdiscs': (0, 0.0),
    'containers': (0, 0.0),
}
# Columns that must never exceed the reference in any run: what a fault leaves behind.
RESIDUE = ('fault_procs_left', 'state_files', 'run_tables', 'run_qdiscs', 'containers')
# Usage columns are judged on the floor of the last runs: one sample is a moment of a live process tree.
SETTLE = 3
COLUMNS = [
    ('iter', '%4s'), ('wall_s', '%7.1f'), ('verdict', '%-9s'),
    ('demo_procs', '%5d'), ('demo_fds', '%5d'), ('demo_rss_mb', '%7.1f'),
    ('ctl_procs', '%5d'), ('ctl_fds', '%5d'), ('ctl_rss_mb', '%7.1f'),
    ('fault_procs_left', '%5d'), ('state_files', '%5d'), ('history', '%5d'),
    ('run_tables', '%5d'), ('run_qdiscs', '%5d'), ('host_tables', '%5d'), ('host_qdiscs', '%5d'),
    ('containers', '%5d'), ('host_containers', '%5d'),
]
HEADERS = {
    'iter': 'iter', 'wall_s': 'wall s', 'verdict': 'verdict', 'demo_procs': 'demo procs', 'demo_fds': 'demo fds',
    'demo_rss_mb': 'demo RSS MB', 'ctl_procs': 'ctl procs', 'ctl_fds': 'ctl fds', 'ctl_rss_mb': 'ctl RSS MB',
    'fault_procs_left': 'fault procs left', 'state_files': 'state files', 'history': 'history',
    'run_tables': 'run nft tables', 'run_qdiscs': 'run qdiscs', 'host_tables': 'host nft tables',
    'host_qdiscs': 'host qdiscs', 'containers': 'demo containers down',
    'host_containers': 'host containers',
}


# ---------------------------------------------------------------- pure

def grown(rows, growth=None):
    """The columns in which the later runs exceed the reference run by more than its slack.

    With three runs or more the first is a warm-up (the demo's connection pool and caches fill
    during it) and the second is the reference; with two, the first is. A residue column grows when
    any later run exceeds the limit; a usage column when the lowest of the last SETTLE runs does.
    """
    growth = GROWTH if growth is None else growth
    if len(rows) < 2:
        return []
    start = 1 if len(rows) >= 3 else 0
    reference = rows[start]
    later = rows[start + 1:]
    found = []
    for column, (absolute, relative) in growth.items():
        limit = reference[column] + absolute + abs(reference[column]) * relative
        if column in RESIDUE:
            judged = max(row[column] for row in later)
        else:
            judged = min(row[column] for row in later[-SETTLE:])
        if judged > limit:
            found.append(column)
    return found


def render(rows, verdict):
    """The Markdown table of the rows and the verdict line."""
    lines = ['| ' + ' | '.join(HEADERS[c] for c, _f in COLUMNS) + ' |',
             '|' + '|'.join('---:' for _c in COLUMNS) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join((fmt % row[c]).strip() for c, fmt in COLUMNS) + ' |')
    lines.append('')
    lines.append('verdict: %s' % verdict)
    return '\n'.join(lines)


def verdict_of(rows):
    columns = grown(rows)
    return 'nothing grows' if not columns else 'grows: %s' % ', '.join(columns)


# ---------------------------------------------------------------- measuring

def tree(pids):
    """The live processes and all their descendants, once each."""
    seen = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root] + root.children(recursive=True):
                seen[proc.pid] = proc
        except psutil.Error:
            continue
    return list(seen.values())


def usage(procs):
    """(processes, open fds, RSS MB) summed over the processes that still run."""
    count, fds, rss = 0, 0, 0
    for proc in procs:
        try:
            fds += proc.num_fds()
            rss += proc.memory_info().rss
            count += 1
        except psutil.Error:
            continue
    return count, fds, rss / 1048576.0


def read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.readline().strip())
    except (OSError, ValueError):
        return None


def demo_pids(info):
    """supervisord (the API under it) and the PostgreSQL postmaster of the demo."""
    pids = []
    supervisor = read_pid(os.path.join(info['state_dir'], 'supervisor', 'supervisord.pid'))
    postmaster = read_pid(os.path.join(info['pg_data_dir'], 'postmaster.pid'))
    for pid in (supervisor, postmaster):
        if pid:
            pids.append(pid)
    return pids


def fault_processes(state_dir):
    """Workers (tagged with the fault id in their environment), guards and watchdogs of ``state_dir``."""
    found = []
    for proc in psutil.process_iter(['pid', 'cmdline']):
        try:
            cmdline = proc.info['cmdline'] or []
            if state_dir in cmdline and ('watch' in cmdline or 'watchdog' in cmdline):
                found.append(proc)
            elif proc.environ().get('MAGSASA_CHAOS_STATE_DIR') == state_dir:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def files(state_dir):
    """(files in the state dir outside history, history entries)."""
    outside, history = 0, 0
    for base, _dirs, names in os.walk(state_dir):
        if os.path.relpath(base, state_dir).split(os.sep)[0] == 'history':
            history += len(names)
        else:
            outside += len(names)
    return outside, history


def history_entries(state_dir):
    """The revert history of this run's faults (one JSON record each)."""
    history = os.path.join(state_dir, 'history')
    entries = []
    try:
        names = sorted(os.listdir(history))
    except OSError:
        return entries
    for name in names:
        try:
            with open(os.path.join(history, name)) as handle:
                entries.append(json.load(handle))
        except (OSError, ValueError):
            continue
    return entries


def in_netns(netns, argv):
    return (['ip', 'netns', 'exec', netns] + argv) if netns else argv


def nft_tables(netns=None):
    """The nftables tables as ``family name`` strings."""
    if not shutil.which('nft'):
        return []
    out = subprocess.run(in_netns(netns, ['nft', 'list', 'tables']), capture_output=True, text=True).stdout
    return [line[len('table '):].strip() for line in out.splitlines() if line.startswith('table ')]


def qdiscs(netns=None, interface=None):
    """The non-default qdisc lines (``tc qdisc show``), of one interface or of all."""
    if not shutil.which('tc'):
        return []
    argv = ['tc', 'qdisc', 'show'] + (['dev', interface] if interface else [])
    out = subprocess.run(in_netns(netns, argv), capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if len(line.split()) > 1 and line.split()[1] not in ('noqueue', 'pfifo_fast', 'mq', 'fq_codel')]


def leftovers(entries):
    """(nft tables, tc qdiscs) that this run's faults created and that still exist."""
    tables, qdisc_count = 0, 0
    for entry in entries:
        details = entry.get('details') or {}
        netns = details.get('netns')
        if details.get('backend') == 'nftables' and details.get('table'):
            tables += details['table'] in nft_tables(netns)
        elif details.get('backend') == 'tc' and details.get('interface'):
            handle = ' %s ' % details.get('handle')
            qdisc_count += any(handle in line + ' ' for line in qdiscs(netns, details['interface']))
    return tables, qdisc_count


def containers(down_only=True):
    """Demo containers (label magsasa.demo) that are not running: a container fault left behind.
    With down_only False: every container on the machine (shown, not judged: shared with others)."""
    if not shutil.which('docker'):
        return 0
    command = ['docker', 'ps', '-a', '--format', '{{.State}}']
    if down_only:
        command[3:3] = ['--filter', 'label=magsasa.demo']
    out = subprocess.run(command, capture_output=True, text=True).stdout.split()
    return len([state for state in out if state != 'running']) if down_only else len(out)


class PeakSampler(threading.Thread):
    """Samples a process tree every ``interval`` seconds and keeps the peaks."""

    def __init__(self, pid, interval=0.5):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = (0, 0, 0.0)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            now = usage(tree([self.pid]))
            self.peak = tuple(max(a, b) for a, b in zip(self.peak, now))
            self.done.wait(self.interval)


# ---------------------------------------------------------------- running

def env(demo_state, reports):
    result = dict(os.environ)
    result.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, 'collections'),
                  ANSIBLE_NOCOLOR='1', MAGSASA_DEMO_STATE_DIR=demo_state, CHAOS_REPORT_OUTPUT_DIR=reports,
                  PATH=BIN + os.pathsep + result.get('PATH', ''))
    return result


def playbook(name, extra, environment, log):
    argv = [os.path.join(BIN, 'ansible-playbook'), os.path.join(ROOT, 'playbooks', name), '-e', json.dumps(extra)]
    if name == 'chaos.yml':
        argv[2:2] = ['-i', os.path.join(ROOT, 'inventories', 'local')]
    return subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)


def soak(iterations, group, extra_vars, workdir, out=sys.stdout):
    demo_state = os.path.join(workdir, 'demo')
    fault_state = os.path.join(workdir, 'faults')
    reports = os.path.join(workdir, 'reports')
    environment = env(demo_state, reports)
    log = open(os.path.join(workdir, 'soak.log'), 'a')
    up = playbook('demo_up.yml', {'demo_target_state_dir': demo_state}, environment, log)
    if up.wait() != 0:
        raise SystemExit('demo_up.yml failed; see %s' % log.name)
    rows = []
    try:
        with open(os.path.join(demo_state, 'demo.json')) as handle:
            info = json.load(handle)
        info['state_dir'] = demo_state
        extra = dict({'chaos_group': group, 'chaos_experiment_state_dir': fault_state}, **extra_vars)
        results = os.path.join(reports, 'chaos_results.json')
        for index in range(1, iterations + 1):
            if os.path.exists(results):
                os.unlink(results)
            started = time.time()
            proc = playbook('chaos.yml', extra, environment, log)
            sampler = PeakSampler(proc.pid)
            sampler.start()
            proc.wait()
            sampler.done.set()
            sampler.join()
            wall = time.time() - started
            time.sleep(1.5)  # the state dir's watchdog leaves within its 0.5 s poll of the last revert
            try:
                with open(results) as handle:
                    verdict = json.load(handle)['summary']['verdict']
            except (OSError, ValueError, KeyError):
                verdict = 'no report'
            if proc.returncode not in (0, 2) and verdict == 'no report':
                verdict = 'rc=%d' % proc.returncode
            demo_procs, demo_fds, demo_rss = usage(tree(demo_pids(info)))
            state_files, history = files(fault_state)
            run_tables, run_qdiscs = leftovers(history_entries(fault_state))
            row = dict(iter=index, wall_s=wall, verdict=str(verdict), demo_procs=demo_procs, demo_fds=demo_fds,
                       demo_rss_mb=demo_rss, ctl_procs=sampler.peak[0], ctl_fds=sampler.peak[1], ctl_rss_mb=sampler.peak[2],
                       fault_procs_left=len(fault_processes(fault_state)), state_files=state_files, history=history,
                       run_tables=run_tables, run_qdiscs=run_qdiscs, host_tables=len(nft_tables()),
                       host_qdiscs=len(qdiscs()), containers=containers(),
                       host_containers=containers(down_only=False))
            rows.append(row)
            out.write(' '.join('%s=%s' % (c, (fmt % row[c]).strip()) for c, fmt in COLUMNS) + '\n')
            out.flush()
    finally:
        down = playbook('demo_down.yml', {'demo_target_state_dir': demo_state, 'demo_target_purge': True}, environment, log)
        down.wait()
        log.close()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iterations', type=int, default=10)
    parser.add_argument('--group', default='smoke_test')
    parser.add_argument('--extra-vars', default='{}', help='JSON extra vars for chaos.yml (scenarios, timings)')
    parser.add_argument('--json', help='also write the rows and the verdict to this file')
    parser.add_argument('--workdir', help='keep the demo, fault state and reports here (default: a temp dir, removed)')
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='magsasa-soak-')
    os.makedirs(workdir, exist_ok=True)
    # The demo's PostgreSQL runs as its own user and must reach its data dir.
    os.chmod(workdir, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        rows = soak(args.iterations, args.group, json.loads(args.extra_vars), workdir)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    verdict = verdict_of(rows)
    print()
    print(render(rows, verdict))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(dict(rows=rows, verdict=verdict, grown=grown(rows)), handle, indent=1)
    return 0 if verdict == 'nothing grows' else 1


if __name__ == '__main__':
    raise SystemExit(main())
