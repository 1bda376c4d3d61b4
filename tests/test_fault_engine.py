"""The fault lifecycle, end to end with the host faults: the guard reverts without the controller
(deadline and lease), leases renew, present/absent are idempotent, check mode touches nothing, and
chaos_faults lists and reverts everything. Real ansible-playbook runs, real processes."""

import datetime
import os
import signal
import time
import uuid


from harness import faults as h, stop_playbook
from harness.faults import task

# Guard poll (0.2 s) + SIGTERM of the workers + a busy shared machine.
GUARD_SLACK = 1.5




def cpu(fault_id, state_dir, **args):
    params = dict(workers=1, load_percent=10, engine='python', fault_id=fault_id, state_dir=state_dir)
    params.update(args)
    return task('chaos_cpu', fault_id, **params)


def epoch(iso):
    return datetime.datetime.strptime(iso, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_killed_controller_fault_ends_at_deadline_and_at_lease_end(tmp_path, state_dir):
    """SIGKILL the whole ansible-playbook process tree mid-fault: the guards still end both faults,
    one at its deadline, one (with a lease nobody renews) at its lease end, long before its deadline."""
    short = 'cpu-deadline-%s' % uuid.uuid4().hex[:6]
    leased = 'cpu-lease-%s' % uuid.uuid4().hex[:6]
    proc = h.start_tasks(tmp_path, [
        cpu(short, state_dir, duration=8),
        cpu(leased, state_dir, duration=300, lease=4, load_percent=15),
        {'name': 'hold', 'ansible.builtin.wait_for': {'timeout': 300}},
    ])
    try:
        short_record = h.wait_for_record(state_dir, short)
        leased_record = h.wait_for_record(state_dir, leased)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    finally:
        stop_playbook(proc)
    short_workers = h.worker_pids(short_record)
    leased_workers = h.worker_pids(leased_record)
    assert h.alive(short_workers) and h.alive(leased_workers), 'faults should outlive the controller'

    lease_end = leased_record['lease_expires_at']
    assert lease_end < leased_record['expires_at'] - 200
    assert h.wait_gone(leased_workers, lease_end + GUARD_SLACK - time.time()), \
        'leased fault still running %.1f s after its lease ended' % (time.time() - lease_end)
    assert h.alive(short_workers), 'the 8 s fault ended before its deadline'
    assert h.wait_gone(short_workers, short_record['expires_at'] + GUARD_SLACK - time.time()), \
        'fault still running %.1f s after its deadline' % (time.time() - short_record['expires_at'])

    assert h.wait_history(state_dir, leased)['reverted_by'] == 'guard:lease-expired'
    assert h.wait_history(state_dir, short)['reverted_by'] == 'guard:deadline'
    assert h.wait_history(state_dir, short)['revert_ok']


def test_lease_renewal_idempotence_check_mode_and_absent(tmp_path, state_dir):
    fault_id = 'cpu-renew-%s' % uuid.uuid4().hex[:6]
    other = 'cpu-check-%s' % uuid.uuid4().hex[:6]
    flag = str(tmp_path / 'release')
    check = cpu(other, state_dir, duration=30, workers=2)
    check['check_mode'] = True
    proc = h.start_tasks(tmp_path, [
        cpu(fault_id, state_dir, duration=60, lease=5),
        {'name': 'a second', 'ansible.builtin.wait_for': {'timeout': 1}},
        cpu(fault_id, state_dir, duration=60, lease=30),
        {'name': 'past the first lease', 'ansible.builtin.wait_for': {'timeout': 2}},
        task('chaos_faults', 'list', state='query', state_dir=state_dir),
        check,
        {'name': 'hold', 'ansible.builtin.wait_for': {'path': flag, 'timeout': 60}},
        task('chaos_cpu', 'absent', state='absent', fault_id=fault_id, state_dir=state_dir),
        task('chaos_cpu', 'absent again', state='absent', fault_id=fault_id, state_dir=state_dir),
    ])
    try:
        record = h.wait_for_record(state_dir, fault_id)
        workers = h.worker_pids(record)
        first_lease_end = record['lease_expires_at']
        # Wait until the renewed fault has outlived its first lease, then watch the absent task.
        while time.time() < first_lease_end + GUARD_SLACK:
            time.sleep(0.1)
        assert h.alive(workers), 'the renewed fault was reverted at its first lease end'
        with open(flag, 'w'):
            pass
        assert h.wait_gone(workers, 30)
        gone_at = time.time()
        results = h.finish_tasks(proc)
    finally:
        stop_playbook(proc)
    injected, _wait, renewed, _wait2, listed, checked, _hold, absent, absent_again = results
    assert injected['changed'] and injected['lease_expires_at'] is not None
    assert renewed['changed'] is False and renewed['renewed'] is True
    assert renewed['lease_expires_at'] > injected['lease_expires_at'] + 20
    assert [f['fault_id'] for f in listed['faults']] == [fault_id]
    assert listed['faults'][0]['guard_alive'] is True

    # Check mode: the plan, and nothing started or recorded.
    assert checked['changed'] is True and checked['plan']['workers'] == 2
    assert 'details' not in checked and 'guard_pid' not in checked
    assert not os.path.exists(os.path.join(state_dir, other + '.json'))
    assert h.history(state_dir, other) is None

    # state=absent: the workers are gone within 1 s of the module's revert starting; the task
    # itself (module start-up included) ends right after.
    assert absent['changed'] is True and absent['reverted'] == [fault_id]
    took = gone_at - epoch(absent['_duration']['start'])
    print('absent task start -> workers gone: %.2f s' % took)
    assert took < 1.5
    entry = h.history(state_dir, fault_id)
    assert entry['reverted_by'] == 'module:absent' and entry['revert_ok']
    assert all(r['result'] == 'terminated' for r in entry['revert_results']), entry['revert_results']
    assert absent_again['changed'] is False and absent_again['reverted'] == []


def test_present_with_identical_fault_is_unchanged(tmp_path, state_dir):
    first, second = h.run_tasks(tmp_path, [
        task('chaos_memory', 'first', size_mb=32, duration=30, state_dir=state_dir),
        task('chaos_memory', 'second', size_mb=32, duration=30, state_dir=state_dir),
    ])
    try:
        assert first['changed'] is True
        assert second['changed'] is False and second['fault_id'] == first['fault_id']
        assert len(h.records(state_dir)) == 1
        assert len(h.fault_processes(state_dir)) == 3  # the guard, the state dir's watchdog, one memory worker
    finally:
        h.run_tasks(tmp_path, [task('chaos_memory', state='absent', state_dir=state_dir)])


def test_chaos_faults_lists_and_reverts_everything(tmp_path, state_dir):
    mount = tmp_path / 'mount'
    mount.mkdir()
    results = h.run_tasks(tmp_path, [
        cpu('cpu-all', state_dir, duration=60),
        task('chaos_memory', size_mb=64, duration=60, state_dir=state_dir),
        task('chaos_disk', path=str(mount), total_mb=8, min_free_mb=64, duration=60, state_dir=state_dir),
        task('chaos_faults', 'list', state='query', state_dir=state_dir),
        task('chaos_faults', 'halt', state='absent_all', state_dir=state_dir),
        task('chaos_faults', 'halt again', state='absent_all', state_dir=state_dir),
        task('chaos_faults', 'list after', state='query', state_dir=state_dir),
    ])
    cpu_fault, memory, disk, listed, halted, halted_again, after = results
    workers = h.worker_pids(dict(details=cpu_fault['details'])) + h.worker_pids(dict(details=memory['details'])) \
        + h.worker_pids(dict(details=disk['details']))
    assert sorted(f['kind'] for f in listed['faults']) == ['cpu', 'disk', 'memory']
    assert all(f['guard_alive'] for f in listed['faults'])
    assert sorted(halted['reverted']) == sorted([cpu_fault['fault_id'], memory['fault_id'], disk['fault_id']])
    assert halted['changed'] is True and halted['failures'] == []
    assert halted_again['changed'] is False and halted_again['reverted'] == []
    assert after['faults'] == []
    assert not h.alive(workers)
    assert os.listdir(str(mount)) == []
    for fault_id in halted['reverted']:
        assert h.history(state_dir, fault_id)['reverted_by'] == 'chaos_faults:absent_all'


def test_deadline_during_injection_leaves_no_worker_and_no_record(tmp_path, state_dir):
    """A duration shorter than injecting and measuring takes: the guard reverts while the module is
    still at work. Whatever the interleaving, no worker may survive and no stale active record may be
    written back after the guard moved it to the history."""
    fault = cpu('cpu-blink', state_dir, duration=0.3, workers=4)
    fault['ignore_errors'] = True
    result = h.run_tasks(tmp_path, [fault])[0]
    if result.get('failed'):
        assert 'reached its deadline while it was being injected' in result['msg'], result
    entry = h.wait_history(state_dir, 'cpu-blink')
    assert entry['reverted_by'] in ('guard:deadline', 'inject-failed')
    assert h.records(state_dir) == []
    started = [a['pid'] for a in entry['revert'] if a['type'] == 'kill']
    assert h.wait_gone(started, 2)
