"""Benchmark: does an experiment over N hosts take about the time of one, inject them together
and hold every host's fault for its planned duration? And what does the hold cost the controller?

Starts container hosts from the local base image (docker connection, names ``<prefix>-*``), a
loopback HTTP service as the probe target, and runs playbooks/chaos.yml with one memory scenario
against N = 1, 5, 10, 20 of them (forks >= N). Each host's fault state directory is a bind mount,
so injection times and held times come from the hosts' own revert history, not from the report.
Prints a table: wall time of ansible-playbook, ratio to N = 1, injection spread, held time per host
against planned, the lead each host had left when it was ready to inject (below 0: it was reached
after the common start), and the controller's CPU (the ansible-playbook process tree) during the hold.

With --local it also runs the scenario once against this machine over the local connection (the
controller's CPU during the hold at 1 host, local and docker side by side).

With --profile it prints where the wall time goes: per step (task) of the experiment, with the
time each took from its start to the next step's, how many hosts ran it and their slowest and
mean run; per host, the time from a step's start to the host's own start (fork queueing) and its
busy time; the wall time inside the hold and outside it; and the ``docker exec`` calls (each one
a process start on the controller and on the target) during the hold and outside it, from
dockerd's own events.

With --smoke it also runs the smoke suite against a demo it starts (own state dir) and compares
the suite's wall time with the sum of its experiments' windows (baseline start to end of
observation) plus the pauses between them.

    .venv/bin/python bench/bench_fanout.py [--sizes 1,5,10,20] [--duration 15] [--local] [--profile] [--smoke]

A printed table, not a timed test: numbers depend on the machine and on what else runs on it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from harness.containers import (  # noqa: E402 (the tests' harness: the same container hosts as tests/test_fleet.py)
    STATE_IN_HOST, remove_container_hosts, start_container_hosts)
from harness.services import Service  # noqa: E402


def env(**extra):
    out = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, 'collections'),
               PATH=os.pathsep.join([VENV_BIN, os.environ.get('PATH', '')]))
    out.update(extra)
    return out


def tree_cpu(proc):
    """CPU seconds of a process and all its descendants, living and reaped."""
    try:
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in proc.children(recursive=True):
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                continue
        return total
    except psutil.Error:
        return None


def run_playbook(args, extra_env):
    """Run ansible-playbook; return (wall seconds, rc, output, [(time, tree cpu seconds)])."""
    started = time.time()
    proc = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook')] + args, cwd=ROOT, env=extra_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(proc.pid)
    samples = []
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        cpu = tree_cpu(watched)
        if cpu is not None:
            samples.append((time.time(), cpu))
        time.sleep(0.25)
    reader.join()
    return time.time() - started, proc.returncode, ''.join(out), samples


class DockerExecs(object):
    """dockerd's own exec_create events for the bench's containers while a run lasts."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.events = []
        self._proc = subprocess.Popen(['docker', 'events', '--format', '{{json .}}', '--filter', 'type=container',
                                       '--filter', 'event=exec_create'], stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            name = (event.get('Actor') or {}).get('Attributes', {}).get('name', '')
            if name.startswith(self.prefix):
                self.events.append((event.get('timeNano', 0) / 1e9, name, event.get('Action', '')))

    def stop(self):
        time.sleep(0.5)  # let the last events arrive
        self._proc.terminate()
        self._proc.wait()
        self._reader.join(timeout=2)
        return self.events


class TargetCPU(object):
    """The container hosts' own CPU time (their cgroups: module runs, the docker exec machinery inside
    them, guards and workers), sampled while a run lasts: on this machine the targets share the
    controller's cores, so a step over N hosts costs the controller's CPU and theirs."""

    def __init__(self, client, names, every=0.2):
        self.paths = []
        for name in names:
            cid = client.containers.get(name).id
            for path in ('/sys/fs/cgroup/cpuacct/docker/%s/cpuacct.usage' % cid,  # cgroup v1, cgroupfs driver
                         '/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat' % cid):  # cgroup v2, systemd driver
                if os.path.exists(path):
                    self.paths.append(path)
                    break
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _read(self):
        total = 0.0
        for path in self.paths:
            try:
                with open(path) as handle:
                    text = handle.read()
            except (IOError, OSError):
                continue
            if path.endswith('cpu.stat'):
                usec = [line.split()[1] for line in text.splitlines() if line.startswith('usage_usec')]
                total += float(usec[0]) / 1e6 if usec else 0.0
            else:
                total += float(text) / 1e9
        return total

    def _run(self, every):
        while not self._stop.is_set():
            self.samples.append((time.time(), self._read()))
            self._stop.wait(every)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.samples.append((time.time(), self._read()))
        return self.samples


def cpu_at(samples, at):
    """Cumulative CPU seconds at time ``at``, interpolated between samples (None without samples)."""
    if not samples:
        return None
    if at <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t0 <= at <= t1:
            return c0 + (c1 - c0) * ((at - t0) / (t1 - t0) if t1 > t0 else 0.0)
    return samples[-1][1]


def cpu_in(samples, start, end):
    a, b = cpu_at(samples, start), cpu_at(samples, end)
    return None if a is None or b is None else max(0.0, b - a)


HOLD_TASK = 'Renew the lease on this target until the fault\'s end, a stop, or the end of the round'


def load_timeline(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def profile(lines, execs, started, ended, controller=(), targets=()):
    """Tables of where the wall time of one run went, from the bench_timeline callback's lines, with
    the CPU the controller (ansible-playbook's process tree) and the targets (their cgroups) spent
    in each step."""
    tasks = [line for line in lines if line['event'] == 'task']
    bounds = [t['at'] for t in tasks[1:]] + [ended]
    steps = {}
    order = []
    hold = []
    hosts = {}
    for task, end in zip(tasks, bounds):
        runs = dict((line['host'], line) for line in lines if line['event'] == 'start' and line['uuid'] == task['uuid'])
        done = [line for line in lines if line['event'] == 'end' and line['uuid'] == task['uuid']]
        ran = [d for d in done if d['status'] != 'skipped']
        if task['task'] not in steps:
            steps[task['task']] = dict(wall=0.0, count=0, hosts=0, longest=0.0, busy=0.0, ctl=0.0, tgt=0.0)
            order.append(task['task'])
        step = steps[task['task']]
        step['wall'] += end - task['at']
        step['ctl'] += cpu_in(controller, task['at'], end) or 0.0
        step['tgt'] += cpu_in(targets, task['at'], end) or 0.0
        step['count'] += 1
        step['hosts'] = max(step['hosts'], len(ran))
        for d in ran:
            began = runs.get(d['host'], {}).get('at', task['at'])
            step['longest'] = max(step['longest'], d['at'] - began)
            step['busy'] += d['at'] - began
            host = hosts.setdefault(d['host'], dict(steps=0, lag=0.0, max_lag=0.0, busy=0.0))
            host['steps'] += 1
            host['lag'] += began - task['at']
            host['max_lag'] = max(host['max_lag'], began - task['at'])
            host['busy'] += d['at'] - began
        if task['task'].endswith(HOLD_TASK):
            hold.append((task['at'], end))
    total = ended - started
    out = ['', 'Where the wall time goes, per step (sum over the step\'s runs; a step\'s time runs from its start to the next\'s):', '',
           '| step | runs | wall | share | hosts | slowest host | mean per host | controller CPU | targets CPU | CPU / cores |',
           '|---|---|---|---|---|---|---|---|---|---|']
    cores = os.cpu_count() or 1
    for name in sorted(order, key=lambda n: -steps[n]['wall'])[:25]:
        step = steps[name]
        out.append('| %s | %d | %.2f s | %.1f %% | %d | %.2f s | %s | %.2f s | %s | %.2f s |' % (
            name.replace('magsasa.chaos.chaos_', '')[:100], step['count'], step['wall'], 100.0 * step['wall'] / total, step['hosts'], step['longest'],
            '%.2f s' % (step['busy'] / step['hosts'] / step['count']) if step['hosts'] else '-', step['ctl'],
            '%.2f s' % step['tgt'] if targets else '-', (step['ctl'] + step['tgt']) / cores))
    rest = sum(steps[n]['wall'] for n in order)
    out.append('| (before the first step: start-up, inventory, parsing) | 1 | %.2f s | %.1f %% | | | |'
               % (tasks[0]['at'] - started if tasks else total, 100.0 * (tasks[0]['at'] - started) / total if tasks else 100))
    out.append('| all steps | %d | %.2f s | %.1f %% | | | |' % (len(tasks), rest, 100.0 * rest / total))
    held = sum(e - s for s, e in hold)
    in_hold = sum(1 for at, _n, _a in execs if any(s <= at <= e for s, e in hold))
    ctl_hold = sum(cpu_in(controller, s, e) or 0.0 for s, e in hold)
    tgt_hold = sum(cpu_in(targets, s, e) or 0.0 for s, e in hold)
    ctl_all, tgt_all = cpu_in(controller, started, ended) or 0.0, cpu_in(targets, started, ended) or 0.0
    out += ['', '"CPU / cores" is the wall time the step would take if its CPU (controller and targets) were all it waited '
            'for, spread over this machine\'s %d cores.' % cores,
            '', '| phase | wall | docker exec calls | controller CPU | targets CPU |', '|---|---|---|---|---|',
            '| inside the hold | %.2f s | %d | %.2f s | %.2f s |' % (held, in_hold, ctl_hold, tgt_hold),
            '| outside the hold | %.2f s | %d | %.2f s | %.2f s |' % (total - held, len(execs) - in_hold, ctl_all - ctl_hold, tgt_all - tgt_hold),
            '| whole run | %.2f s | %d | %.2f s | %.2f s |' % (total, len(execs), ctl_all, tgt_all)]
    out += ['', 'Per host (target steps only): time from each step\'s start to the host\'s own start (fork queueing) and busy time:',
            '', '| host | steps | mean start lag | max start lag | busy | docker exec calls |', '|---|---|---|---|---|---|']
    for name in sorted(hosts):
        host = hosts[name]
        out.append('| %s | %d | %.3f s | %.3f s | %.2f s | %d |' % (
            name, host['steps'], host['lag'] / host['steps'], host['max_lag'], host['busy'],
            sum(1 for _at, n, _a in execs if n == name)))
    return '\n'.join(out)


def cpu_between(samples, start, end):
    inside = [(t, c) for t, c in samples if start <= t <= end]
    if len(inside) < 2:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None


def experiment(record_dir, inventory, state_root, targets, duration, forks, extra_vars, extra_env, profile_with=None,
               client=None):
    """One memory scenario over ``targets``; returns the bench row (and the profile, when asked)."""
    scenario = {'name': 'Bench Memory %d' % len(targets), 'type': 'memory', 'intensity': 'light',
                'targets': ','.join(targets), 'duration': duration,
                'parameters': {'size_mb': 16, 'min_available_mb': 64}}
    extra = {'chaos_suite_scenarios': [scenario], 'chaos_suite_groups': {'b': [scenario['name']]}, 'chaos_group': 'b'}
    extra.update(extra_vars)
    run_env = env(CHAOS_REPORT_OUTPUT_DIR=record_dir, **extra_env)
    execs = None
    # the timeline always: the hold's CPU is measured from the hold task's start, after the previous
    # steps' workers were reaped (their CPU lands in the controller's children times when they are)
    timeline = os.path.join(record_dir + '.timeline')
    run_env.update(BENCH_TIMELINE_FILE=timeline,
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, 'bench', 'callback_plugins'),
                   ANSIBLE_CALLBACKS_ENABLED='magsasa.chaos.chaos_report,bench_timeline')
    target_cpu = None
    if profile_with:
        execs = DockerExecs(profile_with)
        target_cpu = TargetCPU(client, targets) if client is not None else None
    started = time.time()
    try:
        wall, rc, output, samples = run_playbook(
            ['playbooks/chaos.yml', '-i', inventory, '-e', json.dumps(extra), '--forks', str(forks)], run_env)
    finally:
        events = execs.stop() if execs else []
        target_samples = target_cpu.stop() if target_cpu else []
    try:
        with open(os.path.join(record_dir, 'chaos_results.json')) as handle:
            record = json.load(handle)['experiments'][0]
    except (IOError, OSError, ValueError, IndexError):
        print(output[-3000:])
        raise SystemExit('N=%d: ansible-playbook exited %d without a record' % (len(targets), rc))
    fault_id = record['fault']['fault_ids'][0]
    entries = []
    for name in targets:
        with open(os.path.join(state_root, name, 'history', fault_id + '.json')) as handle:
            entries.append(json.load(handle))
    injected = [e['injected_at'] for e in entries]
    held = [e['revert_started_at'] - e['injected_at'] for e in entries]
    lines = load_timeline(timeline)
    hold = [line['at'] for line in lines if line['event'] in ('start', 'end') and line['task'].endswith(HOLD_TASK)]
    hold_cpu = cpu_between(samples, max([max(injected)] + hold[:1]) + 1.0,
                           min([min(e['revert_started_at'] for e in entries)] + hold[-1:]) - 0.5)
    row = dict(n=len(targets), rc=rc, status=record.get('status'), wall=wall, spread=max(injected) - min(injected), held_min=min(held),
               held_max=max(held), cpu=hold_cpu,
               lapsed=sum(1 for e in entries if e['reverted_by'] == 'guard:lease-expired'),
               slack=[p['start_slack'] for p in record.get('hosts') or [] if p.get('start_slack') is not None])
    if profile_with:
        row['profile'] = profile(lines, events, started, started + wall, samples, target_samples)
    return row


def print_rows(rows, duration, connection):
    base = rows[0]['wall']
    print('\nOne memory scenario of %d s, forks >= N, %s connection; load average at the end: %s\n'
          % (duration, connection, ', '.join('%.1f' % v for v in os.getloadavg())))
    print('| hosts | status (rc) | wall time | ratio to N=%d | injection spread | held per host (planned %d s) '
          '| leases lapsed | lead left per host | controller CPU during the hold |' % (rows[0]['n'], duration))
    print('|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        print('| %d | %s (%d) | %.1f s | %.2fx | %.2f s | %.2f-%.2f s | %d | %s | %s |' % (
            row['n'], row['status'], row['rc'], row['wall'], row['wall'] / base, row['spread'], row['held_min'],
            row['held_max'], row['lapsed'],
            '%.2f-%.2f s' % (min(row['slack']), max(row['slack'])) if row['slack'] else 'n/a',
            '%.1f %% of one core' % row['cpu'] if row['cpu'] is not None else 'n/a'))
    for row in rows:
        if row.get('profile'):
            print('\n### Profile at N=%d (%s connection)\n%s' % (row['n'], connection, row['profile']))


def write_inventory(root, name, url, hosts):
    for host in hosts.values():
        host['ansible_python_interpreter'] = '/usr/bin/python3'
    path = os.path.join(root, name)
    with open(path, 'w') as handle:
        yaml.safe_dump({'all': {'hosts': hosts, 'vars': {
            'chaos_environment': 'local', 'chaos_target_url': url, 'chaos_max_hosts': max(len(hosts), 1)}}}, handle)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1,5,10,20')
    parser.add_argument('--duration', type=int, default=15)
    parser.add_argument('--prefix', default='fleet-bench', help='name prefix of the containers the bench starts')
    parser.add_argument('--local', action='store_true', help='also run at 1 host over the local connection')
    parser.add_argument('--profile', action='store_true', help='print where the wall time goes at the largest size')
    parser.add_argument('--smoke', action='store_true')
    opts = parser.parse_args()
    sizes = [int(n) for n in opts.sizes.split(',') if n.strip()]
    import docker
    client = docker.from_env()
    root = tempfile.mkdtemp(prefix=opts.prefix + '-')
    os.chmod(root, 0o711)  # the demo's PostgreSQL runs as postgres and must reach its data dir
    names = ['%s-%d' % (opts.prefix, n) for n in range(1, max(sizes or [0]) + 1)]
    target = Service()
    state_root = os.path.join(root, 'state')
    url = target.url
    try:
        start_container_hosts(client, names, root)
        inventory = write_inventory(root, 'inventory.yml', url, dict(
            (n, {'ansible_connection': 'community.docker.docker', 'ansible_host': n}) for n in names))
        rows = []
        for size in sizes:
            rows.append(experiment(os.path.join(root, 'reports-%d' % size), inventory, state_root, names[:size],
                                   opts.duration, max(size, 10), {'chaos_experiment_state_dir': STATE_IN_HOST}, {},
                                   profile_with=opts.prefix if opts.profile and size == max(sizes) else None, client=client))
        if rows:
            print_rows(rows, opts.duration, 'docker')
        if opts.local:
            local = opts.prefix + '-local'
            os.makedirs(os.path.join(state_root, local))
            inventory = write_inventory(root, 'inventory-local.yml', url, {local: {'ansible_connection': 'local'}})
            print_rows([experiment(os.path.join(root, 'reports-local'), inventory, state_root, [local], opts.duration, 10,
                                   {'chaos_experiment_state_dir': os.path.join(state_root, local)}, {})],
                       opts.duration, 'local')
        if opts.smoke:
            smoke(root, opts.profile)
    finally:
        target.close()
        left = remove_container_hosts(client, names)
        shutil.rmtree(root, ignore_errors=True)
        if left:
            raise SystemExit('container hosts left behind: %s' % left)


def smoke(root, with_profile):
    demo_state = os.path.join(root, 'demo')
    faults = os.path.join(root, 'smoke-faults')
    reports = os.path.join(root, 'smoke-reports')
    timeline = os.path.join(root, 'smoke.timeline')
    run_env = env(MAGSASA_DEMO_STATE_DIR=demo_state, CHAOS_REPORT_OUTPUT_DIR=reports)
    up = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/demo_up.yml', '-e',
                         json.dumps({'demo_target_state_dir': demo_state})], cwd=ROOT, env=run_env,
                        capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit('demo_up failed: %s' % up.stdout[-2000:])
    if with_profile:
        run_env.update(BENCH_TIMELINE_FILE=timeline, ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, 'bench', 'callback_plugins'),
                       ANSIBLE_CALLBACKS_ENABLED='magsasa.chaos.chaos_report,bench_timeline')
    try:
        started = time.time()
        wall, rc, output, samples = run_playbook(
            ['playbooks/chaos.yml', '-i', 'inventories/local', '-e',
             json.dumps({'chaos_group': 'smoke_test', 'chaos_experiment_state_dir': faults})], run_env)
        if not os.path.exists(os.path.join(reports, 'chaos_results.json')):
            raise SystemExit('the smoke suite wrote no report (rc %s):\n%s' % (rc, output[-4000:]))
        with open(os.path.join(reports, 'chaos_results.json')) as handle:
            records = json.load(handle)['experiments']
        windows = 0.0
        ran = 0
        for record in records:
            window = record.get('window') or {}
            if window.get('baseline_start') and window.get('observe_end'):
                windows += float(window['observe_end']) - float(window['baseline_start'])
                ran += 1
        pauses = 5 * max(0, len(records) - 1)
        print('\n| smoke suite | wall time | experiments\' windows | pauses | windows + pauses | ratio |')
        print('|---|---|---|---|---|---|')
        print('| %d experiments (%d ran), rc %d | %.1f s | %.1f s | %d s | %.1f s | %.2fx |' % (
            len(records), ran, rc, wall, windows, pauses, windows + pauses, wall / (windows + pauses)))
        if with_profile:
            print('\n### Profile of the smoke suite\n%s' % profile(load_timeline(timeline), [], started, started + wall, samples))
    finally:
        subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/demo_down.yml', '-e',
                        json.dumps({'demo_target_state_dir': demo_state, 'demo_target_purge': True})],
                       cwd=ROOT, env=run_env, capture_output=True, text=True)


if __name__ == '__main__':
    main()
