"""Benchmark: does an experiment over N hosts take about the time of one, inject them together
and hold every host's fault for its planned duration? And what does the hold cost the controller?

Starts container hosts from the local base image (docker connection, names ``fleet-bench-*``), a
loopback HTTP service as the probe target, and runs playbooks/chaos.yml with one memory scenario
against N = 1, 5, 10, 20 of them (forks >= N). Each host's fault state directory is a bind mount,
so injection times and held times come from the hosts' own revert history, not from the report.
Prints a table: wall time of ansible-playbook, ratio to N = 1, injection spread, held time per host
against planned, and the controller's CPU (the ansible-playbook process tree) during the hold.

With --smoke it also runs the smoke suite against a demo it starts (own state dir) and compares
the suite's wall time with the sum of its experiments' windows (baseline start to end of
observation) plus the pauses between them.

    .venv/bin/python bench/bench_fanout.py [--sizes 1,5,10,20] [--duration 15] [--smoke]

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
    STATE_IN_HOST, inventory_hosts, remove_container_hosts, start_container_hosts)
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


def cpu_between(samples, start, end):
    inside = [(t, c) for t, c in samples if start <= t <= end]
    if len(inside) < 2:
        return None
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1,5,10,20')
    parser.add_argument('--duration', type=int, default=15)
    parser.add_argument('--smoke', action='store_true')
    opts = parser.parse_args()
    sizes = [int(n) for n in opts.sizes.split(',')]
    import docker
    client = docker.from_env()
    root = tempfile.mkdtemp(prefix='fleet-bench-')
    names = ['fleet-bench-%d' % n for n in range(1, max(sizes) + 1)]
    target = Service()
    rows = []
    try:
        start_container_hosts(client, names, root)
        inventory = os.path.join(root, 'inventory.yml')
        with open(inventory, 'w') as handle:
            yaml.safe_dump({'all': {'hosts': inventory_hosts(names), 'vars': {
                'chaos_environment': 'local', 'chaos_target_url': target.url, 'chaos_max_hosts': max(sizes)}}}, handle)
        for size in sizes:
            targets = names[:size]
            scenario = {'name': 'Bench Memory %d' % size, 'type': 'memory', 'intensity': 'light',
                        'targets': ','.join(targets), 'duration': opts.duration,
                        'parameters': {'size_mb': 16, 'min_available_mb': 64}}
            extra = {'chaos_suite_scenarios': [scenario], 'chaos_suite_groups': {'b': [scenario['name']]},
                     'chaos_group': 'b', 'chaos_experiment_state_dir': STATE_IN_HOST}
            reports = os.path.join(root, 'reports-%d' % size)
            wall, rc, output, samples = run_playbook(
                ['playbooks/chaos.yml', '-i', inventory, '-e', json.dumps(extra), '--forks', str(max(size, 10))],
                env(CHAOS_REPORT_OUTPUT_DIR=reports))
            if rc != 0:
                print(output[-3000:])
                raise SystemExit('N=%d: ansible-playbook exited %d' % (size, rc))
            with open(os.path.join(reports, 'chaos_results.json')) as handle:
                record = json.load(handle)['experiments'][0]
            fault_id = record['fault']['fault_ids'][0]
            entries = []
            for name in targets:
                with open(os.path.join(root, 'state', name, 'history', fault_id + '.json')) as handle:
                    entries.append(json.load(handle))
            injected = [e['injected_at'] for e in entries]
            held = [e['revert_started_at'] - e['injected_at'] for e in entries]
            hold_cpu = cpu_between(samples, max(injected) + 1.0, min(e['revert_started_at'] for e in entries) - 0.5)
            rows.append(dict(n=size, wall=wall, spread=max(injected) - min(injected), held_min=min(held),
                             held_max=max(held), cpu=hold_cpu, lapsed=sum(1 for e in entries
                                                                          if e['reverted_by'] == 'guard:lease-expired')))
        base = rows[0]['wall']
        print('\nOne memory scenario of %d s, forks >= N, docker connection; load average at the end: %s\n'
              % (opts.duration, ', '.join('%.1f' % v for v in os.getloadavg())))
        print('| hosts | wall time | ratio to N=%d | injection spread | held per host (planned %d s) | leases lapsed '
              '| controller CPU during the hold |' % (rows[0]['n'], opts.duration))
        print('|---|---|---|---|---|---|---|')
        for row in rows:
            print('| %d | %.1f s | %.2fx | %.2f s | %.2f-%.2f s | %d | %s |' % (
                row['n'], row['wall'], row['wall'] / base, row['spread'], row['held_min'], row['held_max'], row['lapsed'],
                '%.1f %% of one core' % row['cpu'] if row['cpu'] is not None else 'n/a'))
        if opts.smoke:
            smoke(root)
    finally:
        target.close()
        left = remove_container_hosts(client, names)
        shutil.rmtree(root, ignore_errors=True)
        if left:
            raise SystemExit('container hosts left behind: %s' % left)


def smoke(root):
    demo_state = os.path.join(root, 'demo')
    faults = os.path.join(root, 'smoke-faults')
    reports = os.path.join(root, 'smoke-reports')
    run_env = env(MAGSASA_DEMO_STATE_DIR=demo_state, CHAOS_REPORT_OUTPUT_DIR=reports)
    up = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/demo_up.yml', '-e',
                         json.dumps({'demo_target_state_dir': demo_state})], cwd=ROOT, env=run_env,
                        capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit('demo_up failed: %s' % up.stdout[-2000:])
    try:
        wall, rc, output, _samples = run_playbook(
            ['playbooks/chaos.yml', '-i', 'inventories/local', '-e',
             json.dumps({'chaos_group': 'smoke_test', 'chaos_experiment_state_dir': faults})], run_env)
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
    finally:
        subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/demo_down.yml', '-e',
                        json.dumps({'demo_target_state_dir': demo_state, 'demo_target_purge': True})],
                       cwd=ROOT, env=run_env, capture_output=True, text=True)


if __name__ == '__main__':
    main()
