"""Shared pieces of the host fault tests: run real ansible-playbook, find a fault's processes,
and check that a test left nothing behind."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import missing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PYTHON = sys.executable
STATE_ENV = 'MAGSASA_CHAOS_STATE_DIR'


def ansible_env():
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, 'collections'),
        ANSIBLE_STDOUT_CALLBACK='json',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_RETRY_FILES_ENABLED='0',
        PATH=BIN + os.pathsep + env.get('PATH', ''),
    )
    return env


def write_playbook(directory, tasks, host=None):
    """A one-play playbook (JSON is YAML). Without ``host``: localhost, local connection, the venv's
    python; ``host`` is a dict of inventory variables for a host named ``target``."""
    if host is None:
        play = dict(hosts='localhost', connection='local', gather_facts=False,
                    vars=dict(ansible_python_interpreter=PYTHON), tasks=tasks)
    else:
        play = dict(hosts='target', gather_facts=False, tasks=tasks)
    stamp = int(time.time() * 1e6)
    path = os.path.join(str(directory), 'play-%d.yml' % stamp)
    with open(path, 'w') as handle:
        json.dump([play], handle, indent=1)
    inventory = 'localhost,'
    if host is not None:
        inventory = os.path.join(str(directory), 'inventory-%d.yml' % stamp)
        with open(inventory, 'w') as handle:
            json.dump(dict(all=dict(hosts=dict(target=host))), handle)
    return [os.path.join(BIN, 'ansible-playbook'), '-i', inventory, path]


def parse_results(stdout):
    """The json callback's output -> one entry per task: the host's result plus the task timing."""
    data = json.loads(stdout[stdout.index('{'):])
    results = []
    for play in data['plays']:
        for task in play['tasks']:
            hosts = task['hosts']
            result = dict(hosts.get('localhost') or hosts.get('target') or {})
            result['_task'] = task['task']['name']
            result['_duration'] = task['task'].get('duration', {})
            results.append(result)
    return results


def run_playbook(directory, tasks, timeout=120, host=None):
    argv = write_playbook(directory, tasks, host)
    proc = subprocess.run(argv, env=ansible_env(), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    try:
        return parse_results(proc.stdout)
    except ValueError:
        raise AssertionError('ansible-playbook rc=%d, no JSON:\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr))


def start_playbook(directory, tasks):
    """Run a playbook in the background, in its own process group (so a test can SIGKILL it all)."""
    return subprocess.Popen(write_playbook(directory, tasks), env=ansible_env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, start_new_session=True)


def finish_playbook(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    try:
        return parse_results(out)
    except ValueError:
        raise AssertionError('ansible-playbook rc=%d, no JSON:\n%s\n%s' % (proc.returncode, out, err))


def stop_playbook(proc):
    """SIGKILL a background playbook's whole process group if it is still running."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()


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


def wait_for_record(state_dir, fault_id, timeout=60, status='active'):
    deadline = time.time() + timeout
    path = os.path.join(state_dir, fault_id + '.json')
    while time.time() < deadline:
        try:
            with open(path) as handle:
                record = json.load(handle)
            if record.get('status') == status:
                return record
        except (IOError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError('fault %s never became %s in %s' % (fault_id, status, state_dir))


def wait_for_details(state_dir, fault_id, key, timeout=60):
    """The record as soon as the module stored ``details[key]`` (during injection)."""
    deadline = time.time() + timeout
    path = os.path.join(state_dir, fault_id + '.json')
    while time.time() < deadline:
        try:
            with open(path) as handle:
                record = json.load(handle)
            if record.get('details', {}).get(key):
                return record
        except (IOError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError('fault %s never recorded %s in %s' % (fault_id, key, state_dir))


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


def need(tool):
    """A system tool the test needs: in CI its absence fails the test, elsewhere it skips."""
    path = shutil.which(tool)
    if not path:
        missing('%s is not installed' % tool)
    return path


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


def task(module, _title=None, **args):
    """One task of a playbook: ``magsasa.chaos.<module>`` with ``args``."""
    entry = {'magsasa.chaos.%s' % module: args}
    entry['name'] = _title or module
    return entry


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
