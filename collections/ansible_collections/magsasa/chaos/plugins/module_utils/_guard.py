# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The guard: everything needed to revert a fault from its record alone.

A fault is injected by a module that runs as an AnsiballZ payload; its temp files vanish when
the task returns. So every fault is described by a JSON record in the state directory, whose
``revert`` list holds declarative actions (kill a process, remove a path, run a command, start
or unpause a container). This file is copied verbatim into the state directory and started as a
detached process per fault (``watch``): it reverts the fault at ``expires_at`` or, when a lease
is set and not renewed, at ``lease_expires_at``, even if the controller never talks to the
host again. The modules import the same functions to revert early (``state: absent``).

It must stay standalone: Python 3.8+ standard library only, no Ansible imports.

Revert actions run last-registered first, like a stack of deferred calls. Each kind:

``kill``     ``pid``, ``starttime`` (from /proc, so a reused pid is never hit), ``signal``,
             ``group`` (signal the process group), ``escalate_after`` seconds then SIGKILL.
``remove``   ``path``: a file or directory tree to delete; a missing path is fine.
``command``  ``argv``, ``ok_rcs`` (default [0]), ``timeout``, ``env``.
``docker``   ``op`` (start|unpause), ``container``, ``docker_host`` (unix:// or tcp://),
             through the Engine API with the standard library.

A fault that depends on a helper process of its own (the nfqueue delayer) lists it in
``details.watch``; when that process dies, the guard reverts the fault at once (it ended early).
A helper's last words (``details.final_effect_file``) go into the history entry as ``final_effect``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

try:
    import http.client as http_client
except ImportError:  # Python 2 is not a target; keep the import error readable anyway
    http_client = None

GUARD_FILENAME = 'magsasa_chaos_guard.py'
RECORD_SUFFIX = '.json'
LEASE_SUFFIX = '.lease'
HISTORY_DIR = 'history'
HISTORY_KEEP = 200
POLL_SECONDS = 0.2
RECORD_VERSION = 1


class RevertError(Exception):
    pass


# ---------------------------------------------------------------- records and locks

def record_path(state_dir, fault_id):
    return os.path.join(state_dir, fault_id + RECORD_SUFFIX)


def lease_path(state_dir, fault_id):
    """The lease file of a fault: its mtime is the last renewal, its content the lease in seconds.
    Writing it is a renewal (``printf 3 > FILE`` over any connection, no Python on the target)."""
    return os.path.join(state_dir, fault_id + LEASE_SUFFIX)


def write_lease(state_dir, fault_id, lease):
    tmp = '%s.tmp.%d' % (lease_path(state_dir, fault_id), os.getpid())
    with open(tmp, 'w') as handle:
        handle.write('%g' % float(lease))
    os.rename(tmp, lease_path(state_dir, fault_id))


def read_lease(state_dir, fault_id):
    """``(renewed_at, lease_seconds)`` from the lease file, or ``(None, None)`` without one."""
    path = lease_path(state_dir, fault_id)
    try:
        renewed_at = os.stat(path).st_mtime
        with open(path) as handle:
            text = handle.read().strip()
    except (IOError, OSError):
        return None, None
    try:
        return renewed_at, float(text) if text else None
    except ValueError:
        return renewed_at, None


def read_record(path):
    """The record at ``path``, or None when it is gone. A corrupt record raises ValueError."""
    try:
        with open(path, 'r') as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError('fault record %s is not valid JSON' % path)


def write_record(path, record):
    """Atomically replace the record (a reader never sees half a file)."""
    tmp = '%s.tmp.%d' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def list_records(state_dir):
    """Every active fault record in the state directory, oldest first."""
    records = []
    try:
        names = sorted(os.listdir(state_dir))
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return records
        raise
    for name in names:
        if not name.endswith(RECORD_SUFFIX) or name.startswith('.'):
            continue
        path = os.path.join(state_dir, name)
        try:
            record = read_record(path)
        except ValueError as exc:
            record = {'fault_id': name[:-len(RECORD_SUFFIX)], 'corrupt': str(exc), 'revert': []}
        if record is not None:
            records.append(record)
    records.sort(key=lambda r: r.get('started_at') or 0)
    return records


class FaultLock(object):
    """An exclusive lock per fault, so the guard and a module never revert the same fault twice."""

    def __init__(self, state_dir, fault_id):
        self.path = os.path.join(state_dir, '.%s.lock' % fault_id)
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, 'a')
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()
        return False


# ---------------------------------------------------------------- processes

def proc_starttime(pid):
    """The kernel's start time of ``pid`` (clock ticks since boot) as a string, or None if gone."""
    try:
        with open('/proc/%d/stat' % int(pid), 'r') as handle:
            stat = handle.read()
    except (IOError, OSError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(')') + 2:].split()
    if fields and fields[0] == 'Z':
        return None
    return fields[19] if len(fields) > 19 else None


def process_alive(pid, starttime=None):
    current = proc_starttime(pid)
    if current is None:
        return False
    return starttime is None or str(starttime) == current


def _signal_number(value):
    if isinstance(value, int):
        return value
    name = str(value).upper()
    if not name.startswith('SIG'):
        name = 'SIG' + name
    return int(getattr(signal, name))


def _revert_kill(action):
    pid = int(action['pid'])
    starttime = action.get('starttime')
    if not process_alive(pid, starttime):
        return 'already gone'
    sig = _signal_number(action.get('signal', 'SIGTERM'))
    group = bool(action.get('group'))

    def send(num):
        try:
            if group:
                os.killpg(pid, num)
            else:
                os.kill(pid, num)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    send(sig)
    deadline = time.time() + float(action.get('escalate_after', 3.0))
    while time.time() < deadline:
        if not process_alive(pid, starttime):
            return 'terminated'
        time.sleep(0.05)
    send(signal.SIGKILL)
    deadline = time.time() + 5.0
    while time.time() < deadline:
        if not process_alive(pid, starttime):
            return 'killed'
        time.sleep(0.05)
    raise RevertError('process %d did not exit after SIGKILL' % pid)


def _revert_remove(action):
    path = action['path']
    if not os.path.lexists(path):
        return 'already gone'
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return 'removed'


def _revert_command(action):
    argv = [str(a) for a in action['argv']]
    env = dict(os.environ)
    env.update(dict((str(k), str(v)) for k, v in (action.get('env') or {}).items()))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, close_fds=True)
    try:
        output = proc.communicate(timeout=float(action.get('timeout', 60)))[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RevertError('%s timed out' % ' '.join(argv))
    ok_rcs = action.get('ok_rcs') or [0]
    if proc.returncode not in ok_rcs:
        text = output.decode('utf-8', 'replace').strip()[-400:]
        raise RevertError('%s exited %d: %s' % (' '.join(argv), proc.returncode, text))
    return 'rc=%d' % proc.returncode


class _UnixHTTPConnection(http_client.HTTPConnection if http_client else object):
    def __init__(self, socket_path, timeout):
        http_client.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def docker_api_request(docker_host, method, path, timeout=30.0):
    """One Docker Engine API call; returns (status, body text). Plain unix:// or tcp:// only."""
    docker_host = docker_host or 'unix:///var/run/docker.sock'
    if docker_host.startswith('unix://'):
        conn = _UnixHTTPConnection(docker_host[len('unix://'):], timeout)
    elif docker_host.startswith('tcp://'):
        hostport = docker_host[len('tcp://'):].rstrip('/')
        host, port = hostport.rsplit(':', 1)
        conn = http_client.HTTPConnection(host, int(port), timeout=timeout)
    else:
        raise RevertError('docker_host %r is not unix:// or tcp://' % docker_host)
    try:
        conn.request(method, path, headers={'Content-Type': 'application/json'})
        response = conn.getresponse()
        return response.status, response.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def _revert_docker(action):
    op = action['op']
    container = action['container']
    status, body = docker_api_request(action.get('docker_host'), 'POST', '/containers/%s/%s' % (container, op))
    if status in (204, 304):
        return '%s: %d' % (op, status)
    if status == 409 and op == 'unpause' and 'not paused' in body:
        return 'not paused'
    if status == 404:
        raise RevertError('container %s no longer exists; cannot %s it' % (container, op))
    raise RevertError('docker %s %s answered %d: %s' % (op, container, status, body.strip()[:300]))


ACTIONS = {
    'kill': _revert_kill,
    'remove': _revert_remove,
    'command': _revert_command,
    'docker': _revert_docker,
}


def execute_actions(actions, timeout=60.0):
    """Run revert actions last-first, retrying failures with backoff until ``timeout``.

    Returns one result per action, in execution order: ``{action, ok, result|error}``.
    """
    order = list(reversed(list(actions or [])))
    results = [None] * len(order)
    pending = list(range(len(order)))
    deadline = time.time() + float(timeout)
    delay = 0.2
    while pending:
        failed = []
        for index in pending:
            action = order[index]
            handler = ACTIONS.get(action.get('type'))
            if handler is None:
                results[index] = {'action': action, 'ok': False,
                                  'error': 'unknown revert action type %r' % action.get('type')}
                continue
            try:
                results[index] = {'action': action, 'ok': True, 'result': handler(action)}
            except Exception as exc:  # pylint: disable=broad-except
                results[index] = {'action': action, 'ok': False, 'error': str(exc)}
                failed.append(index)
        if not failed or time.time() + delay > deadline:
            break
        pending = failed
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
    return results


def revert_fault(state_dir, fault_id, reverted_by, timeout=None):
    """Revert one fault from its record and move the record to history.

    Returns the history entry, or None when there was no active fault with that id
    (reverting a fault that is already gone is not an error).
    """
    path = record_path(state_dir, fault_id)
    if not os.path.exists(path):
        return None
    with FaultLock(state_dir, fault_id) as lock:
        try:
            record = read_record(path)
        except ValueError as exc:
            record = {'fault_id': fault_id, 'corrupt': str(exc), 'revert': []}
        if record is None:
            return None
        if timeout is None:
            timeout = float(record.get('revert_timeout', 60))
        started = time.time()
        results = execute_actions(record.get('revert', []), timeout=timeout)
        entry = dict(record)
        entry['revert_started_at'] = started
        final_effect = read_final_effect(record)
        if final_effect is not None:
            entry['final_effect'] = final_effect
        entry['reverted_at'] = time.time()
        entry['reverted_by'] = reverted_by
        entry['revert_results'] = results
        entry['revert_ok'] = all(r['ok'] for r in results)
        history = os.path.join(state_dir, HISTORY_DIR)
        if not os.path.isdir(history):
            os.makedirs(history, 0o700)
        write_record(os.path.join(history, fault_id + RECORD_SUFFIX), entry)
        if entry['revert_ok']:
            _unlink_quietly(lease_path(state_dir, fault_id))
            os.unlink(path)
            # Whoever waits on this lock next finds no record and does nothing.
            os.unlink(lock.path)
        else:
            # Keep the record active so halt / a later run can retry what failed.
            record['revert_failures'] = [r for r in results if not r['ok']]
            write_record(path, record)
    _prune_history(history)
    return entry


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def read_history(state_dir, fault_id):
    """The history entry of a reverted fault, or None."""
    try:
        return read_record(os.path.join(state_dir, HISTORY_DIR, fault_id + RECORD_SUFFIX))
    except ValueError:
        return None


def read_final_effect(record):
    """What a fault's helper process wrote when the revert stopped it (``details.final_effect_file``,
    JSON), read once and removed; None when the fault has none."""
    path = (record.get('details') or {}).get('final_effect_file')
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, 'r') as handle:
            effect = json.load(handle)
    except (IOError, OSError, ValueError) as exc:
        effect = {'error': 'could not read %s: %s' % (path, exc)}
    for leftover in (path, path + '.tmp'):
        if os.path.lexists(leftover):
            os.unlink(leftover)
    return effect


def dead_helper(record):
    """The name of a helper process the fault depends on (``details.watch``: ``{name, pid,
    starttime}`` each) that is no longer running, or None. Without it the fault has ended early
    (a killed delayer: the bypass flag lets traffic through), so its rules must go too."""
    if record.get('status') != 'active':
        return None
    for helper in (record.get('details') or {}).get('watch') or []:
        if not process_alive(helper['pid'], helper.get('starttime')):
            return helper.get('name') or 'pid %s' % helper['pid']
    return None


def _prune_history(history):
    try:
        names = [os.path.join(history, n) for n in os.listdir(history) if n.endswith(RECORD_SUFFIX)]
    except OSError:
        return
    if len(names) <= HISTORY_KEEP:
        return
    names.sort(key=os.path.getmtime)
    for old in names[:-HISTORY_KEEP]:
        try:
            os.unlink(old)
        except OSError:
            pass


def renew_lease(state_dir, fault_id, lease, now=None, dry_run=False):
    """Extend an active fault's lease to ``now + lease`` (never past its deadline).

    Returns the updated record, or None when the fault is gone: a lapsed fault is never revived.
    """
    now = time.time() if now is None else now
    path = record_path(state_dir, fault_id)
    if not os.path.exists(path):
        return None
    with FaultLock(state_dir, fault_id):
        record = read_record(path)
        if record is None:
            return None
        record['lease'] = lease
        record['lease_expires_at'] = min(float(record['expires_at']), now + float(lease))
        if not dry_run:
            write_record(path, record)
            if record.get('lease_file'):
                write_lease(state_dir, fault_id, lease)
    return record


def lease_end(record, renewed_at=None, lease=None):
    """When an unrenewed lease ends (this host's clock), or None without a lease.

    With a lease file (``renewed_at`` its mtime, ``lease`` its content) the last renewal counts, so
    a holder can shorten the lease it was injected with: a generous first lease covers the time
    until the holder starts, then every renewal promises only ``lease`` more seconds. Records
    without a lease file keep ``lease_expires_at``."""
    if record.get('lease_expires_at') is None:
        return None
    if renewed_at is not None:
        return renewed_at + float(lease if lease is not None else record.get('lease') or 0)
    return float(record['lease_expires_at'])


def fault_deadline(record, renewed_at=None, lease=None):
    """When the guard must revert: the duration's end, or the lease's end if that comes first."""
    deadline = float(record['expires_at'])
    end = lease_end(record, renewed_at, lease)
    if end is not None:
        deadline = min(deadline, end)
    return deadline


# ---------------------------------------------------------------- the watcher process

def watch(state_dir, fault_id):
    """Block until the fault's deadline (re-reading the record, since a lease may be renewed),
    then revert it. Exits at once when the record is gone (reverted by someone else)."""
    path = record_path(state_dir, fault_id)
    stop = {'signal': None}

    def on_signal(signum, _frame):
        stop['signal'] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    while True:
        try:
            record = read_record(path)
        except ValueError:
            record = {'expires_at': 0}
        if record is None:
            return 0
        now = time.time()
        renewed_at, lease = read_lease(state_dir, fault_id) if record.get('lease_file') else (None, None)
        deadline = fault_deadline(record, renewed_at, lease)
        dead = dead_helper(record)
        if stop['signal'] is not None:
            reason = 'guard:signal-%d' % stop['signal']
        elif dead is not None:
            reason = 'guard:helper-exited:%s' % dead
        elif now >= deadline:
            end = lease_end(record, renewed_at, lease)
            reason = 'guard:lease-expired' if end is not None and end < float(record['expires_at']) else 'guard:deadline'
        else:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - now)))
            continue
        entry = revert_fault(state_dir, fault_id, reason)
        return 0 if entry is None or entry['revert_ok'] else 1


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or argv[0] != 'watch':
        sys.stderr.write('usage: %s watch STATE_DIR FAULT_ID\n' % GUARD_FILENAME)
        return 2
    return watch(argv[1], argv[2])


if __name__ == '__main__':
    raise SystemExit(main())
