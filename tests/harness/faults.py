"""Fault state of a test's own: run fault modules on localhost (or one host), read the state dir
(records, revert history), find a fault's processes, and check that a test left nothing behind."""

import glob
import json
import os
import signal
import time

import psutil
import pytest

from harness.playbooks import ansible_env, run_play, start_playbook, task_results, write_play

STATE_ENV = 'MAGSASA_CHAOS_STATE_DIR'


def task(module, _title=None, **args):
    """One task of a playbook: ``magsasa.chaos.<module>`` with ``args``."""
    entry = {'magsasa.chaos.%s' % module: args}
    entry['name'] = _title or module
    return entry


def run_tasks(directory, tasks, timeout=120, host=None):
    """Run the tasks (see ``write_play``); one result per task (see ``task_results``)."""
    return task_results(run_play(directory, tasks, host=host, json=True, timeout=timeout))


def start_tasks(directory, tasks):
    """Run the tasks on localhost in the background, in a session of their own (see ``start_playbook``)."""
    path, inventory = write_play(directory, tasks)
    return start_playbook(path, inventory=inventory, env=ansible_env(json=True))


def finish_tasks(proc, timeout=120):
    """The results of a run ``start_tasks`` started, once it ends."""
    out, err = proc.communicate(timeout=timeout)
    return task_results(out, err)


def records(state_dir):
    """The active fault records (not the history)."""
    found = []
    for path in sorted(glob.glob(os.path.join(state_dir, '*.json'))):
        with open(path) as handle:
            found.append(json.load(handle))
    return found


def history(state_dir, fault_id):
    path = os.path.join(state_dir, 'history', fault_id + '.json')
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def wait_history(state_dir, fault_id, timeout=5):
    """The history entry, once the reverter has written it (just after the last revert step)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        entry = history(state_dir, fault_id)
        if entry is not None:
            return entry
        time.sleep(0.05)
    raise AssertionError('no history entry for %s in %s' % (fault_id, state_dir))


def _wait_for_record_where(state_dir, fault_id, accept, timeout, poll, what):
    deadline = time.time() + timeout
    path = os.path.join(state_dir, fault_id + '.json')
    while time.time() < deadline:
        try:
            with open(path) as handle:
                record = json.load(handle)
            if accept(record):
                return record
        except (IOError, ValueError):
            pass
        time.sleep(poll)
    raise AssertionError('fault %s never %s in %s' % (fault_id, what, state_dir))


def wait_for_record(state_dir, fault_id, timeout=60, status='active'):
    return _wait_for_record_where(state_dir, fault_id, lambda record: record.get('status') == status, timeout, 0.05,
                                  'became %s' % status)


def wait_for_details(state_dir, fault_id, key, timeout=60):
    """The record as soon as the module stored ``details[key]`` (during injection)."""
    return _wait_for_record_where(state_dir, fault_id, lambda record: record.get('details', {}).get(key), timeout, 0.02,
                                  'recorded %s' % key)


def fault_processes(state_dir):
    """Every live process a fault under ``state_dir`` started: workers (tagged in their environment,
    stress-ng's forks included), guards (``watch <state_dir>`` in their command line) and the state
    dir's watchdog (``watchdog <state_dir>``)."""
    found = []
    for proc in psutil.process_iter(['pid', 'cmdline', 'status']):
        try:
            if proc.info['status'] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = proc.info['cmdline'] or []
            if ('watch' in cmdline or 'watchdog' in cmdline) and state_dir in cmdline:
                found.append(proc)
            elif proc.environ().get(STATE_ENV) == state_dir:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def probe_samplers(home):
    """The background probe samplers running from a probe directory under ``home`` (a run's HOME)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(arg.startswith(str(home)) and arg.endswith(".sampler.py") for arg in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def alive(pids):
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


def wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive(pids):
            return True
        time.sleep(0.05)
    return not alive(pids)


def worker_pids(record):
    return [p['pid'] for p in record['details'].get('processes', [])]


def tree(pids):
    """The processes and their descendants (stress-ng forks its workers)."""
    procs = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs.append(root)
            procs.extend(root.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return procs


def cpu_windows(procs, windows=3, length=0.6):
    """CPU % summed over the processes, per consecutive window."""
    readings = []
    for proc in procs:
        try:
            proc.cpu_percent(None)
        except psutil.NoSuchProcess:
            pass
    for _index in range(windows):
        time.sleep(length)
        total = 0.0
        for proc in procs:
            try:
                total += proc.cpu_percent(None)
            except psutil.NoSuchProcess:
                pass
        readings.append(round(total, 1))
    return readings


def schedstat(pid):
    """(ns on a CPU, ns waiting runnable in a run queue) of a process's main thread."""
    with open('/proc/%d/schedstat' % pid) as handle:
        on_cpu, waiting = handle.read().split()[:2]
    return int(on_cpu), int(waiting)


def cpu_and_wait_windows(procs, windows, length=1.0):
    """Per consecutive ``length`` s window: (CPU %, run-queue wait %) of the processes, each summed over
    them, from the scheduler's own accounting. The wait is the time they wanted a CPU and had none:
    the share of the machine that other work took from them."""
    def totals():
        on_cpu = waiting = 0
        for proc in procs:
            try:
                cpu_ns, wait_ns = schedstat(proc.pid)
            except (IOError, OSError, ValueError):
                continue
            on_cpu += cpu_ns
            waiting += wait_ns
        return time.monotonic(), on_cpu, waiting

    readings = []
    last = totals()
    for _index in range(windows):
        time.sleep(length - ((time.monotonic() - last[0]) % length))
        now = totals()
        elapsed = (now[0] - last[0]) * 1e9
        readings.append((round(100.0 * (now[1] - last[1]) / elapsed, 1), round(100.0 * (now[2] - last[2]) / elapsed, 1)))
        last = now
    return readings


def cleanup_and_check(state_dir):
    """Kill whatever a fault under ``state_dir`` left running, then fail if anything was left."""
    # A guard notices within its 0.2 s poll that its fault was reverted, then exits.
    deadline = time.time() + 1.5
    left = fault_processes(state_dir)
    while left and time.time() < deadline:
        time.sleep(0.1)
        left = fault_processes(state_dir)
    leftover_records = [r['fault_id'] for r in records(state_dir)] if os.path.isdir(state_dir) else []
    described = ['%d %s' % (p.pid, ' '.join(p.cmdline())[:80]) for p in left if p.is_running()]
    for proc in left:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
    assert not described, 'fault processes left running: %s' % described
    assert not leftover_records, 'fault records left active: %s' % leftover_records


@pytest.fixture
def state_dir(tmp_path):
    """A fault state dir of the test's own; the test fails if a fault process or record is left."""
    path = str(tmp_path / 'state')
    try:
        yield path
    finally:
        cleanup_and_check(path)


# A supervisord of a test's own (in ``dir``) running one program; ``command`` is the program's command line.
SUPERVISOR_CONF = """[unix_http_server]
file = {dir}/supervisor.sock

[supervisord]
logfile = {dir}/supervisord.log
pidfile = {dir}/supervisord.pid
nodaemon = true
loglevel = info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{dir}/supervisor.sock

[program:{program}]
command = {command}
autorestart = true
startsecs = 0
stopsignal = KILL
"""
