"""The backstop behind the guard, live: SIGKILL (or SIGSTOP) the guard of a held fault and the
state directory's watchdog reverts it within its stated bound; kill the watchdog and the guard
starts a new one. Both run with a lowered OOM score. Real ansible-playbook runs, real processes,
a real container on the local dockerd."""

import contextlib
import json
import os
import signal
import time
import uuid

import psutil
import pytest

import support_containers_db as support
from harness import faults as h
from harness.faults import task

# The watchdog polls every 0.5 s; the revert itself (SIGTERM of a worker, or a container start)
# comes on top. These are the bounds the README states, plus room for a busy shared machine.
GUARD_DEATH_BOUND = 2.0
CONTAINER_START_BOUND = 4.0
# The guard checks on the watchdog every 2 s.
WATCHDOG_RESTART_BOUND = 3.0
# A stuck guard: the watchdog steps in 1 s after the deadline, then polls every 0.5 s.
STUCK_GUARD_BOUND = 2.0

pytestmark = pytest.mark.timeout(120)


def cpu(fault_id, state_dir, **args):
    params = dict(workers=1, load_percent=10, engine='python', fault_id=fault_id, state_dir=state_dir)
    params.update(args)
    return task('chaos_cpu', fault_id, **params)


def watchdogs(state_dir):
    return [p for p in h.fault_processes(state_dir) if 'watchdog' in p.cmdline()]


def oom_score_adj(pid):
    with open('/proc/%d/oom_score_adj' % pid) as handle:
        return int(handle.read())


def wait_until(predicate, timeout, interval=0.02):
    """Seconds until ``predicate()`` held, or None if it never did within ``timeout``."""
    start = time.time()
    while time.time() - start < timeout:
        if predicate():
            return time.time() - start
        time.sleep(interval)
    return None


def test_watchdog_reverts_a_cpu_fault_whose_guard_was_sigkilled(tmp_path, state_dir):
    fault_id = 'cpu-orphan-%s' % uuid.uuid4().hex[:6]
    injected = h.run_tasks(tmp_path, [cpu(fault_id, state_dir, duration=90)])[0]
    assert injected['changed'] and injected['backstops']['watchdog'] in ('process', 'running'), injected
    record = h.wait_for_record(state_dir, fault_id)
    guard = record['guard']['pid']
    workers = h.worker_pids(record)
    (watchdog,) = watchdogs(state_dir)

    # Kill the watchdog first: the guard starts another one.
    watchdog.kill()
    restarted = wait_until(lambda: [w for w in watchdogs(state_dir) if w.pid != watchdog.pid], WATCHDOG_RESTART_BOUND + 2)
    print('watchdog SIGKILL -> new watchdog: %s s' % (restarted if restarted is None else round(restarted, 2)))
    assert restarted is not None and restarted < WATCHDOG_RESTART_BOUND, restarted
    assert h.alive(workers), 'killing the watchdog ended the fault'

    # Now the guard: the new watchdog adopts the orphaned record and reverts it.
    os.kill(guard, signal.SIGKILL)
    took = wait_until(lambda: not h.alive(workers), GUARD_DEATH_BOUND + 5)
    print('guard SIGKILL -> CPU workers gone: %s s' % (took if took is None else round(took, 2)))
    assert took is not None and took < GUARD_DEATH_BOUND, took
    entry = h.wait_history(state_dir, fault_id)
    assert entry['reverted_by'] == 'watchdog:guard-died' and entry['revert_ok'], entry
    assert h.records(state_dir) == []
    # With nothing left to watch the watchdog exits, and takes its lock file with it.
    assert wait_until(lambda: not watchdogs(state_dir), 3) is not None
    assert not [n for n in os.listdir(state_dir) if n.endswith('.lock')], os.listdir(state_dir)


def may_lower_oom_score():
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE, which some sandboxes withhold even from root."""
    try:
        with open('/proc/self/oom_score_adj', 'w') as handle:
            handle.write('%d\n' % (oom_score_adj(os.getpid()) - 1))
    except OSError:
        return False
    with open('/proc/self/oom_score_adj', 'w') as handle:
        handle.write('%d\n' % (oom_score_adj(os.getpid()) + 1))
    return True


@contextlib.contextmanager
def raised_oom_score(score):
    """Run the block with this process's oom_score_adj raised (anyone may raise it); what it starts
    inherits the raised score."""
    before = oom_score_adj(os.getpid())
    with open('/proc/self/oom_score_adj', 'w') as handle:
        handle.write('%d\n' % score)
    try:
        yield
    finally:
        with open('/proc/self/oom_score_adj', 'w') as handle:
            handle.write('%d\n' % before)


def test_guard_and_watchdog_run_with_a_lowered_oom_score(tmp_path, state_dir):
    """Started under a raised OOM score, the guard and the watchdog lower theirs: to -900 where the
    machine grants CAP_SYS_RESOURCE, else down to 0, while the fault's workers keep the raised score,
    so the OOM killer picks the workers first either way."""
    expected = -900 if may_lower_oom_score() else 0
    fault_id = 'cpu-oom-%s' % uuid.uuid4().hex[:6]
    with raised_oom_score(500):
        h.run_tasks(tmp_path, [cpu(fault_id, state_dir, duration=30)])
    record = h.wait_for_record(state_dir, fault_id)
    try:
        (watchdog,) = watchdogs(state_dir)
        guard_pid = record['guard']['pid']
        assert oom_score_adj(guard_pid) == expected
        assert oom_score_adj(watchdog.pid) == expected
        workers = [p for p in h.fault_processes(state_dir) if p.pid not in (guard_pid, watchdog.pid)]
        assert workers and all(oom_score_adj(p.pid) == 500 for p in workers), workers
    finally:
        h.run_tasks(tmp_path, [task('chaos_cpu', state='absent', fault_id=fault_id, state_dir=state_dir)])


def test_watchdog_reverts_at_the_deadline_when_the_guard_is_stuck(tmp_path, state_dir):
    """A guard that is alive but stopped (SIGSTOP): the watchdog reverts 1 s past the deadline.
    The CPU workers carry their own deadline, so the revert is timed by its history entry."""
    fault_id = 'cpu-stuck-%s' % uuid.uuid4().hex[:6]
    h.run_tasks(tmp_path, [cpu(fault_id, state_dir, duration=10)])
    record = h.wait_for_record(state_dir, fault_id)
    guard = psutil.Process(record['guard']['pid'])
    guard.suspend()
    try:
        assert time.time() < record['expires_at'] - 1, 'the playbook took the whole fault duration; nothing to test'
        entry = h.wait_history(state_dir, fault_id, timeout=record['expires_at'] - time.time() + STUCK_GUARD_BOUND + 5)
    finally:
        guard.resume()
    late = entry['reverted_at'] - record['expires_at']
    print('deadline -> reverted with a stopped guard: %.2f s' % late)
    assert entry['reverted_by'] == 'watchdog:guard-late-deadline' and entry['revert_ok'], entry
    assert 0 < late < STUCK_GUARD_BOUND, late
    # The resumed guard finds its fault gone and exits.
    assert h.wait_gone([guard.pid], 2)


@pytest.fixture
def httpd_container():
    support.require_dockerd()
    support.ensure_busybox_image()
    name = support.unique('survive-ct')
    support.run_httpd_container(name, restart='no', healthcheck=False)
    try:
        yield name
    finally:
        problems = support.remove_containers([name])
        assert problems == {'exited': [], 'paused': []}, 'container left stopped or paused: %s' % problems


def test_watchdog_starts_a_stopped_container_whose_guard_was_sigkilled(tmp_path, state_dir, httpd_container):
    persist = str(tmp_path / 'persist')
    fault_id = 'ct-orphan-%s' % uuid.uuid4().hex[:6]
    h.run_tasks(tmp_path, [task('chaos_container', name=httpd_container, action='stop', stop_timeout=1,
                                   duration=90, fault_id=fault_id, state_dir=state_dir, persist_dir=persist)])
    record = h.wait_for_record(state_dir, fault_id)
    assert support.inspect(httpd_container)['State']['Status'] == 'exited'
    # A stopped container outlives a reboot: the record has its persistent copy.
    assert os.path.exists(os.path.join(persist, fault_id + '.json'))

    os.kill(record['guard']['pid'], signal.SIGKILL)
    took = wait_until(lambda: support.inspect(httpd_container)['State']['Running'], CONTAINER_START_BOUND + 5)
    print('guard SIGKILL -> container running: %s s' % (took if took is None else round(took, 2)))
    assert took is not None and took < CONTAINER_START_BOUND, took
    entry = h.wait_history(state_dir, fault_id)
    assert entry['reverted_by'] == 'watchdog:guard-died' and entry['revert_ok'], entry
    assert not os.path.exists(os.path.join(persist, fault_id + '.json')), 'persistent copy left after the revert'


def test_halt_reverts_what_a_previous_boot_left_where_no_boot_hook_ran(tmp_path, state_dir):
    """No systemd, no cron: chaos_faults (halt.yml) finds the persistent copy a previous boot left and
    reverts it; a copy of this boot is its guard's business and is left alone."""
    persist = tmp_path / 'persist'
    persist.mkdir()
    left_on_disk = tmp_path / 'scratch'
    left_on_disk.mkdir()
    stale = dict(fault_id='disk-stale', kind='disk', started_at=1.0, expires_at=2.0, boot_id='an-earlier-boot',
                 persist_dir=str(persist), revert=[dict(type='remove', path=str(left_on_disk))])
    with open(str(persist / 'disk-stale.json'), 'w') as handle:
        json.dump(stale, handle)
    listed, halted, again = h.run_tasks(tmp_path, [
        task('chaos_faults', 'list', state='query', state_dir=state_dir, persist_dir=str(persist)),
        task('chaos_faults', 'halt', state='absent_all', state_dir=state_dir, persist_dir=str(persist)),
        task('chaos_faults', 'halt again', state='absent_all', state_dir=state_dir, persist_dir=str(persist)),
    ])
    assert [(f['fault_id'], f['previous_boot']) for f in listed['faults']] == [('disk-stale', True)]
    assert halted['reverted'] == ['disk-stale'] and halted['failures'] == []
    assert again['changed'] is False
    assert not left_on_disk.exists()
    assert not (persist / 'disk-stale.json').exists()
