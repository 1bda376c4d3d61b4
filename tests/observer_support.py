"""What the observer-effect tests and ``bench/bench_observer.py`` share: a supervisord-managed
service whose restart takes a known time, a passive HTTP probe of our own, the recovery read from
supervisord's own log, and one experiment run through ``playbooks/chaos.yml`` with the CPU time
its controller process tree used."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import psutil

from harness import ansible_env, free_port, playbook_command
from harness.faults import SUPERVISOR_CONF

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
BIN = os.path.dirname(sys.executable)
SERVICE = os.path.join(TESTS, 'observer_service.py')

SUPERVISOR_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (spawned|exited): '?([^' ]+)'?")


def wait_http(url, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    return False


class Supervised(object):
    """supervisord running one program: ``observer_service.py`` on ``port``, listening
    ``ready_after`` seconds after each (re)start."""

    def __init__(self, directory, program, ready_after):
        self.dir = str(directory)
        self.program = program
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d/health' % self.port
        self.conf = os.path.join(self.dir, 'supervisord.conf')
        self.log = os.path.join(self.dir, 'supervisord.log')
        with open(self.conf, 'w') as handle:
            handle.write(SUPERVISOR_CONF.format(dir=self.dir, program=program, command='%s %s %d --ready-after %s' % (
                sys.executable, SERVICE, self.port, ready_after)))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([os.path.join(BIN, 'supervisord'), '-c', self.conf], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_http(self.url):
            self.stop()
            raise AssertionError('supervisord did not bring %s up at %s' % (self.program, self.url))
        return self

    def program_pid(self):
        """The program's pid, read passively: supervisord's child with the service's command line."""
        for child in psutil.Process(self.proc.pid).children():
            try:
                if SERVICE in child.cmdline():
                    return child.pid
            except psutil.Error:
                continue
        return None

    def respawns(self):
        """``[(exited_at, spawned_at)]`` from supervisord's own log (its clock, millisecond resolution)."""
        events = []
        with open(self.log) as handle:
            for line in handle:
                match = SUPERVISOR_LOG_LINE.match(line)
                if match and match.group(3) == self.program:
                    stamp = datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S,%f').timestamp()
                    events.append((match.group(2), stamp))
        pairs = []
        for index, (kind, stamp) in enumerate(events):
            if kind == 'exited' and index + 1 < len(events) and events[index + 1][0] == 'spawned':
                pairs.append((stamp, events[index + 1][1]))
        return pairs

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for proc in psutil.process_iter(['cmdline']):
            cmdline = proc.info['cmdline'] or []
            if SERVICE in cmdline and str(self.port) in cmdline:
                proc.kill()
        self.proc = None


class PassiveProbe(threading.Thread):
    """Our own ground truth: one GET at a time on a fixed 50 Hz timeline, nothing else sent."""

    def __init__(self, url, interval=0.02, timeout=0.5):
        super(PassiveProbe, self).__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.samples = []
        self.done = threading.Event()

    def run(self):
        next_at = time.time()
        while not self.done.is_set():
            sent = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                    ok = response.status == 200
            except Exception:  # every failure is a failed sample
                ok = False
            self.samples.append((sent, ok))
            next_at += self.interval
            if next_at < time.time():
                next_at = time.time()
            self.done.wait(max(0.0, next_at - time.time()))

    def stop(self):
        self.done.set()
        self.join(timeout=5)

    def outages(self, start, end):
        """Durations from the first failed sample to the next good one, for outages starting in [start, end]."""
        spans, down_since = [], None
        for sent, ok in self.samples:
            if sent < start:
                continue
            if not ok and down_since is None:
                if sent > end:
                    break
                down_since = sent
            elif ok and down_since is not None:
                spans.append(sent - down_since)
                down_since = None
        return spans


def tree_cpu_seconds(root):
    """User + system CPU of a process and every live descendant, plus what their exited and reaped
    children used (the kernel adds a reaped child's time to its parent's children_* fields)."""
    total = 0.0
    try:
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return None
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def inventory(directory, target_url, fault_defaults, python=sys.executable):
    data = {'all': {
        'hosts': {'svc': {'ansible_connection': 'local', 'ansible_python_interpreter': python}},
        'children': {'app': {'hosts': {'svc': None}}, 'db': {'hosts': {'svc': None}},
                     'containers': {'hosts': {'svc': None}}},
        'vars': {'chaos_environment': 'local', 'chaos_target_url': target_url, 'chaos_fault_defaults': fault_defaults,
                 'chaos_abort': {'window': 50, 'max_consecutive_failures': 600}, 'chaos_max_hosts': 1},
    }}
    path = os.path.join(str(directory), 'inventory-%d.json' % int(time.time() * 1e6))
    with open(path, 'w') as handle:
        json.dump(data, handle)
    return path


def run_experiment(directory, scenario, target_url, fault_defaults, state_dir, extra=None, timeout=300):
    """One scenario through playbooks/chaos.yml; returns ``(record, controller)``.

    ``controller``: ``wall_seconds`` and ``cpu_seconds`` of the whole ansible-playbook run (from
    wait4, so every reaped descendant counts and the detached guard and probe do not), and
    ``hold_cpu_seconds`` / ``hold_seconds`` over the experiment's hold phase, sampled from /proc
    every 0.1 s (``samples``: ``[(time, cumulative CPU seconds)]``, for any other window).
    """
    directory = str(directory)
    reports = os.path.join(directory, 'reports-%d' % int(time.time() * 1e6))
    extra_vars = {'chaos_suite_scenarios': [scenario], 'chaos_suite_groups': {'one': [scenario['name']]},
                  'chaos_group': 'one', 'chaos_experiment_state_dir': state_dir,
                  'chaos_experiment_baseline_seconds': 2}
    extra_vars.update(extra or {})
    env = ansible_env(CHAOS_REPORT_OUTPUT_DIR=reports)
    log_path = os.path.join(directory, 'ansible-%d.log' % int(time.time() * 1e6))
    command = playbook_command('chaos.yml', inventory(directory, target_url, fault_defaults), extra_vars)
    samples = []
    with open(log_path, 'w') as log:
        started = time.time()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        done = threading.Event()

        def sample():
            while not done.is_set():
                cpu = tree_cpu_seconds(root)
                if cpu is not None:
                    samples.append((time.time(), cpu))
                done.wait(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
            time.sleep(0.05)
        wall = time.time() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path) as handle:
        output = handle.read()
    results_path = os.path.join(reports, 'chaos_results.json')
    if not os.path.exists(results_path):
        raise AssertionError('ansible-playbook rc=%d wrote no results:\n%s' % (proc.returncode, output[-4000:]))
    with open(results_path) as handle:
        record = json.load(handle)['experiments'][0]
    record['_output'] = output
    record['_rc'] = proc.returncode
    controller = dict(wall_seconds=wall, cpu_seconds=usage.ru_utime + usage.ru_stime, samples=samples)
    start = record['window']['fault_start']
    if start is not None:
        end = start + float(scenario['duration'])
        if record['window']['fault_end'] and record['window']['fault_end'] > start:
            end = record['window']['fault_end']
        controller.update(hold_seconds=end - start,
                          hold_cpu_seconds=interpolate(samples, end) - interpolate(samples, start))
    return record, controller


def interpolate(samples, at):
    """The cumulative CPU at time ``at`` from ``[(time, cpu)]`` samples."""
    before = [s for s in samples if s[0] <= at]
    after = [s for s in samples if s[0] >= at]
    if not before:
        return after[0][1]
    if not after:
        return before[-1][1]
    (t0, c0), (t1, c1) = before[-1], after[0]
    return c0 if t1 == t0 else c0 + (c1 - c0) * (at - t0) / (t1 - t0)
