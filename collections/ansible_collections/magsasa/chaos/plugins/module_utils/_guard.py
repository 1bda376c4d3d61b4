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

The guard is one process, so it has a backstop that is not the guard: one ``watchdog`` process per
state directory (a transient systemd service where systemd is PID 1) that adopts the records of a
guard that died and reverts them at once, and reverts any fault a live but stuck guard left past
its deadline. Guard and watchdog restart each other, both with a lowered OOM score so a memory
fault never has them killed first. Where systemd runs, a transient timer per fault (``backstop``)
is a third, process-free line at the fault's hard deadline. Every path reverts through
``revert_fault`` under the fault's lock, so a fault is never reverted twice.

A fault whose effect outlives a reboot (a stopped container or database, files on disk) also keeps
a copy of its record in a persistent directory; a boot hook (a systemd unit, or an ``@reboot``
crontab entry) reverts the copies left by a previous boot. The hook is installed with the first
such record and removed with the last.

It must stay standalone: Python 3.8+ standard library only, no Ansible imports, apart from
``_proc`` (process identity by pid and start time) and ``_atomic`` (atomic file writes), which
``FaultEngine.install_program`` copies next to it (:data:`PROGRAM_NEEDS`) and which are held to
the same rule.

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

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

try:
    # A copy run from a state directory imports the copies installed next to it.
    import magsasa_chaos_atomic as _atomic
    import magsasa_chaos_proc as _proc
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic, _proc

GUARD_FILENAME = 'magsasa_chaos_guard.py'
# The modules the copied guard imports, installed next to it under their PROGRAM_FILENAME.
PROGRAM_NEEDS = (_proc, _atomic)
RECORD_SUFFIX = '.json'
LEASE_SUFFIX = '.lease'
HISTORY_DIR = 'history'
HISTORY_KEEP = 200
POLL_SECONDS = 0.2
RECORD_VERSION = 1

WATCHDOG_LOCK = '.watchdog.lock'
WATCHDOG_POLL = 0.5
# A live guard reverts within its 0.2 s poll of the deadline; the watchdog steps in after this.
WATCHDOG_GRACE = 1.0
# A record is written before its guard is started; give the module this long to record the guard.
GUARD_START_GRACE = 10.0
# How often the guard checks that the watchdog runs, and how long a failing revert waits for a retry.
SUPERVISE_SECONDS = 2.0
RETRY_FAILED_SECONDS = 30.0
# Below every ordinary process (0), above the kernel's "never" (-1000): a leaking guard stays killable.
OOM_SCORE_ADJ = -900
BACKSTOP_TIMER_GRACE = 2.0
# A lock name no fault id can take (fault ids start with a letter or digit).
BOOT_HOOK_LOCK_ID = '-boot-hook'
SYSTEMD_UNIT_DIR = '/etc/systemd/system'


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
    _atomic.write_atomic(lease_path(state_dir, fault_id), '%g' % float(lease))


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
    """Atomically and durably replace the record (a reader never sees half a file)."""
    _atomic.write_json_atomic(path, record, fsync=True, indent=1)


def save_record(state_dir, record):
    """Write an active record, and its persistent copy when the fault outlives a reboot."""
    write_record(record_path(state_dir, record['fault_id']), record)
    persist_dir = record.get('persist_dir')
    if persist_dir and os.path.abspath(persist_dir) != os.path.abspath(state_dir):
        write_record(record_path(persist_dir, record['fault_id']), record)


def boot_id():
    """What names this boot: the kernel's random boot id plus the start time of PID 1, so that a
    container's restart (same kernel, new init) counts as a boot too. None where neither is known."""
    try:
        with open('/proc/sys/kernel/random/boot_id', 'r') as handle:
            kernel = handle.read().strip()
    except (IOError, OSError):
        kernel = ''
    init = proc_starttime(1) or ''
    return '%s/%s' % (kernel, init) if kernel or init else None


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

# The kernel's start time of a pid (a string), None when gone; and whether that same process still runs.
proc_starttime = _proc.starttime
process_alive = _proc.is_running


def spawn_detached(argv, cwd='/', env=None):
    """Start a process that outlives its starter: its own session, no inherited stdio or fds.

    Returns ``(pid, starttime)`` so a later kill can make sure it hits the same process.
    """
    devnull = open(os.devnull, 'r+b')
    try:
        proc = subprocess.Popen(argv, stdin=devnull, stdout=devnull, stderr=devnull, cwd=cwd,
                                env=env, close_fds=True, start_new_session=True)
    finally:
        devnull.close()
    starttime = None
    for _attempt in range(50):
        starttime = proc_starttime(proc.pid)
        if starttime is not None:
            break
        time.sleep(0.01)
    return proc.pid, starttime


def lower_oom_score(pid='self', value=OOM_SCORE_ADJ):
    """Make the OOM killer pick anything else first; returns the score that took, or None.

    Going below a process's floor (0 unless a privileged process set another) needs
    CAP_SYS_RESOURCE, which some sandboxes withhold even from root. Without it, come down to 0
    at least: a guard started under a raised score (which every child inherits, the fault's own
    workers included) then still ranks behind those workers.
    """
    for score in (value, 0):
        try:
            with open('/proc/%s/oom_score_adj' % pid, 'w') as handle:
                handle.write('%d\n' % score)
            return score
        except (IOError, OSError):
            continue
    return None


def _revert_kill(action):
    pid = int(action['pid'])
    starttime = action.get('starttime')
    if not process_alive(pid, starttime):
        return 'already gone'
    sig = _proc.signal_number(action.get('signal', 'SIGTERM'))
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
    # Confirmed by reading /proc/<pid>/stat of the process we signal: no signal, no request, so the
    # confirmation cannot change how it exits.
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


def _http_connection(docker_host, timeout):
    """An HTTP connection to the Docker Engine at ``docker_host`` (unix:// or tcp://)."""
    # Imported here: only a docker revert needs it, and every guard, watchdog and fault module
    # imports this file; http.client costs each of them tens of milliseconds of start-up.
    import http.client

    class UnixHTTPConnection(http.client.HTTPConnection):
        def __init__(self, socket_path):
            http.client.HTTPConnection.__init__(self, 'localhost', timeout=timeout)
            self.socket_path = socket_path

        def connect(self):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
            self.sock = sock

    if docker_host.startswith('unix://'):
        return UnixHTTPConnection(docker_host[len('unix://'):])
    if docker_host.startswith('tcp://'):
        host, port = docker_host[len('tcp://'):].rstrip('/').rsplit(':', 1)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)
    raise RevertError('docker_host %r is not unix:// or tcp://' % docker_host)


def docker_api_request(docker_host, method, path, timeout=30.0):
    """One Docker Engine API call; returns (status, body text). Plain unix:// or tcp:// only."""
    conn = _http_connection(docker_host or 'unix:///var/run/docker.sock', timeout)
    try:
        conn.request(method, path, headers={'Content-Type': 'application/json'})
        response = conn.getresponse()
        return response.status, response.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def _revert_docker(action):
    # One request, and its answer is the confirmation: nothing polls the container afterwards.
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
        actions = record.get('revert', [])
        skipped = []
        if record.get('boot_id') and record['boot_id'] != boot_id():
            # The processes a fault started died with the boot it started them in; a pid and start
            # time from another boot may name an unrelated process now.
            skipped = [dict(action=a, ok=True, result='gone with the previous boot')
                       for a in actions if a.get('type') == 'kill']
            actions = [a for a in actions if a.get('type') != 'kill']
        results = skipped + execute_actions(actions, timeout=timeout)
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
            if record.get('persist_dir'):
                _unlink_quietly(record_path(record['persist_dir'], fault_id))
            # Whoever waits on this lock next finds no record and does nothing.
            os.unlink(lock.path)
        else:
            # Keep the record active so halt / a later run can retry what failed.
            record['revert_failures'] = [r for r in results if not r['ok']]
            save_record(state_dir, record)
    _prune_history(history)
    if entry['revert_ok'] and record.get('persist_dir'):
        retire_boot_hook(record['persist_dir'])
    return entry


def revert_many(targets, reverted_by, timeout=None):
    """Revert each ``(state_dir, fault_id)`` of ``targets`` (see :func:`revert_fault`; one already gone is
    skipped). Returns ``dict(reverted=[fault_id...], final_effects={fault_id: effect}, failures=['fault_id:
    error'...])``: a failed step of one fault never keeps the others from being reverted."""
    summary = dict(reverted=[], final_effects={}, failures=[])
    for state_dir, fault_id in targets:
        entry = revert_fault(state_dir, fault_id, reverted_by, timeout=timeout)
        if entry is None:
            continue
        summary['reverted'].append(entry['fault_id'])
        if 'final_effect' in entry:
            summary['final_effects'][entry['fault_id']] = entry['final_effect']
        summary['failures'].extend('%s: %s' % (entry['fault_id'], r['error'])
                                   for r in entry['revert_results'] if not r['ok'])
    return summary


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
            save_record(state_dir, record)
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


# ---------------------------------------------------------------- the watcher processes

def systemd_is_init():
    """Whether systemd is PID 1 here and its tools are installed (sd_booted's test)."""
    return os.path.isdir('/run/systemd/system') and bool(shutil.which('systemd-run')) \
        and bool(shutil.which('systemctl'))


def _dir_tag(directory):
    return hashlib.sha256(os.path.abspath(directory).encode('utf-8')).hexdigest()[:12]


def watchdog_unit(state_dir):
    return 'magsasa-chaos-watchdog-%s.service' % _dir_tag(state_dir)


def backstop_unit(fault_id):
    return 'magsasa-chaos-backstop-%s' % fault_id


def watchdog_running(state_dir):
    """Whether a watchdog holds this state directory's watchdog lock."""
    try:
        handle = open(os.path.join(state_dir, WATCHDOG_LOCK), 'a')
    except (IOError, OSError):
        return False
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        return True
    finally:
        handle.close()
    return False


def ensure_watchdog(state_dir, python=None, script=None):
    """Start the state directory's watchdog unless one runs. Two starters racing is harmless: the
    second watchdog finds the lock taken and exits. Returns how it was started, or None."""
    if watchdog_running(state_dir):
        return None
    python = python or sys.executable
    script = script or os.path.abspath(__file__)
    argv = [python, script, 'watchdog', state_dir]
    if systemd_is_init() and os.geteuid() == 0:
        # Owned by PID 1, not by the SSH session that injected: a session cleanup (logind's
        # KillUserProcesses) or a killed process group cannot take it along with the guard.
        unit = watchdog_unit(state_dir)
        proc = subprocess.run(['systemd-run', '--quiet', '--collect', '--unit', unit,
                               '--property', 'OOMScoreAdjust=%d' % OOM_SCORE_ADJ, '--'] + argv,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        if proc.returncode == 0:
            return 'systemd:%s' % unit
        # The unit exists: another starter (this fault's guard, a second module run) got there
        # first. A second watchdog beside it would only race it for the lock.
        state = subprocess.run(['systemctl', 'is-active', unit], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, check=False)
        if state.stdout.strip() in (b'active', b'activating'):
            return 'systemd:%s' % unit
    spawn_detached(argv)
    return 'process'


def arm_backstop_timer(state_dir, record, python=None, script=None, now=None):
    """Where systemd is PID 1: a transient timer that runs ``backstop`` at the fault's hard deadline
    (plus a grace), needing no process of ours alive until then. Returns the timer unit or None."""
    if not (systemd_is_init() and os.geteuid() == 0):
        return None
    now = time.time() if now is None else now
    delay = max(1.0, float(record['expires_at']) - now + BACKSTOP_TIMER_GRACE)
    unit = backstop_unit(record['fault_id'])
    python = python or sys.executable
    script = script or os.path.abspath(__file__)
    proc = subprocess.run(['systemd-run', '--quiet', '--collect', '--unit', unit,
                           '--on-active=%dms' % int(delay * 1000), '--timer-property=AccuracySec=100ms',
                           '--', python, script, 'backstop', state_dir, record['fault_id']],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    return unit + '.timer' if proc.returncode == 0 else None


def disarm_action(timer):
    """The revert step that removes a fault's backstop timer once the fault is reverted."""
    # 5: the unit is gone already (the timer fired, or systemd forgot it).
    return dict(type='command', argv=['systemctl', 'stop', timer], ok_rcs=[0, 1, 5], timeout=30)


def adoption_reason(record, now, guard_alive, renewed_at=None, lease=None):
    """Why a backstop must revert this record now, or None while it is in its guard's hands.

    Pure: ``guard_alive`` is whether the recorded guard process (pid and start time) still runs;
    ``renewed_at`` and ``lease`` come from the fault's lease file, as the guard reads them.
    """
    if record.get('corrupt') or record.get('expires_at') is None:
        return None
    if now >= fault_deadline(record, renewed_at, lease) + WATCHDOG_GRACE:
        end = lease_end(record, renewed_at, lease)
        late = 'lease-expired' if end is not None and end < float(record['expires_at']) else 'deadline'
        return late if not guard_alive else 'guard-late-' + late
    if guard_alive:
        return None
    if record.get('guard'):
        return 'guard-died'
    if now - float(record.get('started_at') or now) > GUARD_START_GRACE:
        return 'no-guard'
    return None


def guard_alive(record):
    guard = record.get('guard') or {}
    return bool(guard.get('pid')) and process_alive(guard['pid'], guard.get('starttime'))


def adoption_reason_now(state_dir, record):
    """``adoption_reason`` for a record on disk, with its lease file read as the guard reads it."""
    renewed_at, lease = read_lease(state_dir, record['fault_id']) if record.get('lease_file') else (None, None)
    return adoption_reason(record, time.time(), guard_alive(record), renewed_at, lease)


def watchdog(state_dir):
    """The backstop process of a state directory: one at a time (a lock), it reverts the faults
    whose guard died and those left past their deadline, and exits when no fault is left."""
    try:
        lock = open(os.path.join(state_dir, WATCHDOG_LOCK), 'a')
    except (IOError, OSError):
        return 0
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (IOError, OSError):
        return 0
    lower_oom_score()
    stop = {'signal': None}

    def on_signal(signum, _frame):
        stop['signal'] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    last_failed = {}
    while stop['signal'] is None:
        records = list_records(state_dir)
        if not records:
            # Leave no lock file behind. A starter that opened it just before loses nothing: at worst
            # a second watchdog runs for a while, and both revert only under each fault's lock.
            _unlink_quietly(lock.name)
            return 0
        for record in records:
            fault_id = record.get('fault_id')
            reason = adoption_reason_now(state_dir, record)
            if reason is None or time.time() - last_failed.get(fault_id, 0) < RETRY_FAILED_SECONDS:
                continue
            entry = revert_fault(state_dir, fault_id, 'watchdog:' + reason)
            if entry is not None and not entry['revert_ok']:
                last_failed[fault_id] = time.time()
        time.sleep(WATCHDOG_POLL)
    return 0


def backstop(state_dir, fault_id):
    """Run by the systemd timer at the fault's hard deadline: revert it if it is still active and
    neither its guard nor the watchdog got to it. A fault still in a live guard's hands (its deadline
    moved, the clock was set back) is left to the guard."""
    try:
        record = read_record(record_path(state_dir, fault_id))
    except ValueError:
        record = None
    if record is None:
        return 0
    reason = adoption_reason_now(state_dir, record)
    if reason is None:
        return 0
    entry = revert_fault(state_dir, fault_id, 'backstop-timer:' + reason)
    return 0 if entry is None or entry['revert_ok'] else 1


def watch(state_dir, fault_id):
    """Block until the fault's deadline (re-reading the record, since a lease may be renewed),
    then revert it. Exits at once when the record is gone (reverted by someone else). Meanwhile
    keep the state directory's watchdog running."""
    path = record_path(state_dir, fault_id)
    stop = {'signal': None}

    def on_signal(signum, _frame):
        stop['signal'] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    lower_oom_score()
    # The module that started this guard starts the watchdog itself, right after; supervising
    # from the first moment would only race it to start a second one.
    next_supervise = time.time() + SUPERVISE_SECONDS

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
            if now >= next_supervise:
                next_supervise = now + SUPERVISE_SECONDS
                try:
                    ensure_watchdog(state_dir)
                except (IOError, OSError):
                    pass
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - now)))
            continue
        entry = revert_fault(state_dir, fault_id, reason)
        return 0 if entry is None or entry['revert_ok'] else 1


# ---------------------------------------------------------------- surviving a reboot

def boot_unit(persist_dir):
    return 'magsasa-chaos-boot-%s.service' % _dir_tag(persist_dir)


def boot_unit_text(persist_dir, python):
    """The systemd unit that reverts, at boot, the faults a previous boot left active (pure)."""
    script = os.path.join(persist_dir, GUARD_FILENAME)
    return '\n'.join([
        '# Written by magsasa.chaos with the first fault that outlives a reboot; removed with the last.',
        '[Unit]',
        'Description=Revert the chaos faults left active by the previous boot (%s)' % persist_dir,
        'Wants=network-online.target',
        'After=local-fs.target network-online.target docker.service containerd.service',
        '',
        '[Service]',
        'Type=oneshot',
        'ExecStart=%s %s boot %s' % (python, script, persist_dir),
        '',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
    ])


def cron_line(persist_dir, python):
    """The ``@reboot`` crontab entry used where systemd is not PID 1 (pure). Its tag finds it again."""
    script = os.path.join(persist_dir, GUARD_FILENAME)
    return '@reboot %s %s boot %s # magsasa-chaos-boot %s' % (python, script, persist_dir, _dir_tag(persist_dir))


def without_cron_line(crontab, persist_dir):
    """The crontab text minus this persist dir's entry (pure)."""
    tag = '# magsasa-chaos-boot %s' % _dir_tag(persist_dir)
    return ''.join(line for line in crontab.splitlines(True) if not line.rstrip().endswith(tag))


def _crontab():
    proc = subprocess.run(['crontab', '-l'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False)
    return proc.stdout.decode('utf-8', 'replace') if proc.returncode == 0 else ''


def _set_crontab(text):
    proc = subprocess.run(['crontab', '-'], input=text.encode('utf-8'), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    if proc.returncode != 0:
        raise RevertError('crontab - exited %d: %s' % (proc.returncode, proc.stdout.decode('utf-8', 'replace').strip()))


def _systemctl(*args):
    proc = subprocess.run(('systemctl',) + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RevertError('systemctl %s exited %d: %s' % (' '.join(args), proc.returncode,
                                                          proc.stdout.decode('utf-8', 'replace').strip()))


def install_boot_hook(persist_dir, python=None):
    """Install (once) what reverts ``persist_dir``'s records at the next boot.

    Returns ``{'type': 'systemd'|'cron', 'name': ...}``, or None where this host has neither a
    usable systemd (as root) nor ``crontab``: the caller warns that a reboot would leave the fault.
    """
    python = python or sys.executable
    with FaultLock(persist_dir, BOOT_HOOK_LOCK_ID):
        if systemd_is_init() and os.geteuid() == 0 and os.path.isdir(SYSTEMD_UNIT_DIR):
            unit = boot_unit(persist_dir)
            path = os.path.join(SYSTEMD_UNIT_DIR, unit)
            if _atomic.replace_if_changed(path, boot_unit_text(persist_dir, python)):
                _systemctl('daemon-reload')
            _systemctl('enable', '--quiet', unit)
            return dict(type='systemd', name=unit)
        if shutil.which('crontab'):
            line = cron_line(persist_dir, python)
            crontab = _crontab()
            if line not in crontab.splitlines():
                kept = without_cron_line(crontab, persist_dir)
                if kept and not kept.endswith('\n'):
                    kept += '\n'
                _set_crontab(kept + line + '\n')
            return dict(type='cron', name=line)
    return None


def retire_boot_hook(persist_dir):
    """Remove the boot hook once ``persist_dir`` holds no active record. Never raises: a hook
    left behind only runs, finds nothing, and removes itself at the next boot."""
    try:
        with FaultLock(persist_dir, BOOT_HOOK_LOCK_ID):
            if list_records(persist_dir):
                return False
            path = os.path.join(SYSTEMD_UNIT_DIR, boot_unit(persist_dir))
            if os.path.exists(path):
                if shutil.which('systemctl'):
                    subprocess.run(['systemctl', 'disable', '--quiet', boot_unit(persist_dir)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
                os.unlink(path)
                if systemd_is_init():
                    subprocess.run(['systemctl', 'daemon-reload'], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if shutil.which('crontab'):
                crontab = _crontab()
                kept = without_cron_line(crontab, persist_dir)
                if kept != crontab:
                    _set_crontab(kept)
            return True
    except (IOError, OSError, RevertError):
        return False


def boot(persist_dir):
    """Run by the boot hook: revert every persistent record a previous boot left active."""
    failed = 0
    for record in list_records(persist_dir):
        if record.get('boot_id') and record['boot_id'] == boot_id():
            continue  # a fault of this boot: its guard and watchdog have it
        entry = revert_fault(persist_dir, record['fault_id'], 'boot-hook')
        if entry is not None and not entry['revert_ok']:
            failed += 1
    retire_boot_hook(persist_dir)
    return 1 if failed else 0


COMMANDS = {
    'watch': (2, watch),
    'watchdog': (1, watchdog),
    'backstop': (2, backstop),
    'boot': (1, boot),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    if command is None or len(argv) - 1 != command[0]:
        sys.stderr.write('usage: %s watch STATE_DIR FAULT_ID | watchdog STATE_DIR | backstop STATE_DIR FAULT_ID'
                         ' | boot PERSIST_DIR\n' % GUARD_FILENAME)
        return 2
    return command[1](*argv[1:])


if __name__ == '__main__':
    raise SystemExit(main())
