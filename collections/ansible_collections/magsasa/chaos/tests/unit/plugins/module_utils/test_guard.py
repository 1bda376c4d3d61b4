# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _fault, _guard


def installed_guard(tmp_path):
    """The guard as a fault installs it: copied, with what it imports next to it, into a directory of its own."""
    return _fault.install_program(_guard, _guard.GUARD_FILENAME, str(tmp_path / 'installed'))


def _sleeper():
    proc = subprocess.Popen(['sleep', '300'], start_new_session=True)
    for _attempt in range(100):
        starttime = _guard.proc_starttime(proc.pid)
        if starttime:
            return proc, starttime
        time.sleep(0.01)
    raise AssertionError('sleep did not start')


def test_kill_action_stops_the_same_process():
    proc, starttime = _sleeper()
    try:
        results = _guard.execute_actions([dict(type='kill', pid=proc.pid, starttime=starttime, group=True)], timeout=5)
        assert results[0]['ok'], results
        assert proc.wait(timeout=5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill_action_never_hits_a_reused_pid():
    proc, starttime = _sleeper()
    try:
        # A different start time means the pid now belongs to another process: leave it alone.
        results = _guard.execute_actions([dict(type='kill', pid=proc.pid, starttime=str(int(starttime) - 1))], timeout=5)
        assert results[0] == dict(action=results[0]['action'], ok=True, result='already gone')
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_remove_and_command_actions_run_last_registered_first(tmp_path):
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    (scratch / 'file').write_text('x')
    log = tmp_path / 'order'
    actions = [
        dict(type='remove', path=str(scratch)),
        dict(type='command', argv=[sys.executable, '-c', 'import os,sys; open(sys.argv[1], "a").write(str(os.path.exists(sys.argv[2])))',
                                   str(log), str(scratch)]),
    ]
    results = _guard.execute_actions(actions, timeout=5)
    assert [r['ok'] for r in results] == [True, True]
    # The command (registered last) ran first, while the scratch dir still existed.
    assert log.read_text() == 'True'
    assert not scratch.exists()
    assert _guard.execute_actions(actions[:1], timeout=5)[0]['result'] == 'already gone'


def test_failing_command_is_retried_then_reported(tmp_path):
    marker = tmp_path / 'attempts'
    script = 'import sys; p=sys.argv[1]; n=len(open(p).read()) if __import__("os").path.exists(p) else 0; ' \
             'open(p, "a").write("x"); sys.exit(0 if n >= 2 else 3)'
    results = _guard.execute_actions([dict(type='command', argv=[sys.executable, '-c', script, str(marker)])], timeout=10)
    assert results[0]['ok']
    assert marker.read_text() == 'xxx'
    failing = _guard.execute_actions([dict(type='command', argv=['false'])], timeout=0.5)
    assert not failing[0]['ok'] and 'exited 1' in failing[0]['error']


def test_unknown_action_type_is_an_error_not_a_crash():
    results = _guard.execute_actions([dict(type='teleport')], timeout=1)
    assert not results[0]['ok'] and 'teleport' in results[0]['error']


@pytest.mark.parametrize('record, expected', [
    (dict(expires_at=100.0, lease_expires_at=None), 100.0),
    (dict(expires_at=100.0, lease_expires_at=40.0), 40.0),
    (dict(expires_at=100.0, lease_expires_at=140.0), 100.0),
    (dict(expires_at=100.0), 100.0),
])
def test_fault_deadline_is_the_earlier_of_duration_and_lease(record, expected):
    assert _guard.fault_deadline(record) == expected


def test_renew_lease_extends_but_never_revives(tmp_path):
    state_dir = str(tmp_path)
    record = dict(fault_id='f1', expires_at=1000.0, lease=5, lease_expires_at=105.0, revert=[])
    _guard.write_record(_guard.record_path(state_dir, 'f1'), record)
    renewed = _guard.renew_lease(state_dir, 'f1', 10, now=100.0)
    assert renewed['lease_expires_at'] == 110.0
    assert _guard.read_record(_guard.record_path(state_dir, 'f1'))['lease_expires_at'] == 110.0
    assert _guard.renew_lease(state_dir, 'f1', 5000, now=100.0)['lease_expires_at'] == 1000.0
    assert _guard.renew_lease(state_dir, 'gone', 10, now=100.0) is None
    assert not os.path.exists(_guard.record_path(state_dir, 'gone'))


def test_a_state_dir_that_never_existed_means_the_fault_is_gone(tmp_path):
    missing = str(tmp_path / 'never-created')
    assert _guard.renew_lease(missing, 'f0', 10) is None
    assert _guard.revert_fault(missing, 'f0', 'test') is None
    assert not os.path.exists(missing)


def test_revert_fault_moves_the_record_to_history_and_is_idempotent(tmp_path):
    state_dir = str(tmp_path)
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    _guard.write_record(_guard.record_path(state_dir, 'f2'),
                        dict(fault_id='f2', expires_at=1.0, revert=[dict(type='remove', path=str(scratch))]))
    entry = _guard.revert_fault(state_dir, 'f2', 'test')
    assert entry['revert_ok'] and entry['reverted_by'] == 'test'
    assert not scratch.exists()
    assert _guard.list_records(state_dir) == []
    assert os.path.exists(os.path.join(state_dir, 'history', 'f2.json'))
    assert not [n for n in os.listdir(state_dir) if n.endswith('.lock')], os.listdir(state_dir)
    assert _guard.revert_fault(state_dir, 'f2', 'test') is None


def test_failed_revert_keeps_the_record_active_for_a_retry(tmp_path):
    state_dir = str(tmp_path)
    _guard.write_record(_guard.record_path(state_dir, 'f3'),
                        dict(fault_id='f3', expires_at=1.0, revert=[dict(type='command', argv=['false'])]))
    entry = _guard.revert_fault(state_dir, 'f3', 'test', timeout=0.3)
    assert not entry['revert_ok']
    active = _guard.list_records(state_dir)
    assert [r['fault_id'] for r in active] == ['f3'] and active[0]['revert_failures']


@pytest.mark.parametrize('faults, reverted, failed', [
    ([], [], []),
    (['ok'], ['a0'], []),
    (['ok', 'gone', 'ok'], ['a0', 'a2'], []),
    (['fails', 'ok'], ['a0', 'a1'], ['a0']),
    (['ok', 'fails', 'fails'], ['a0', 'a1', 'a2'], ['a1', 'a2']),
])
def test_revert_many_reverts_every_fault_whatever_fails(tmp_path, faults, reverted, failed):
    """One call for every caller that reverts several faults: a failed step of one never keeps the others
    from being reverted, a fault already gone is skipped, and final effects and failures are collected."""
    dirs = [tmp_path / 'one', tmp_path / 'two']
    targets, scratches = [], []
    for index, kind in enumerate(faults):
        state_dir = str(dirs[index % 2])
        fault_id = 'a%d' % index
        targets.append((state_dir, fault_id))
        if kind == 'gone':
            continue
        scratch = tmp_path / ('scratch-%d' % index)
        scratch.mkdir()
        scratches.append(scratch)
        effect = tmp_path / ('effect-%d.json' % index)
        effect.write_text('{"held": %d}' % index)
        revert = [dict(type='remove', path=str(scratch))]
        if kind == 'fails':
            revert.append(dict(type='command', argv=['false']))
        if not os.path.isdir(state_dir):
            os.makedirs(state_dir)
        _guard.write_record(_guard.record_path(state_dir, fault_id), dict(
            fault_id=fault_id, expires_at=1.0, revert=revert, details=dict(final_effect_file=str(effect))))
    done = _guard.revert_many(targets, 'test:many', timeout=0.3)
    assert done['reverted'] == reverted
    assert [f.split(':')[0] for f in done['failures']] == failed
    assert all('false' in f or 'rc=' in f or 'exit' in f for f in done['failures']), done['failures']
    assert done['final_effects'] == dict((f, dict(held=int(f[1:]))) for f in reverted)
    assert not any(s.exists() for s in scratches)
    still_active = sorted(r['fault_id'] for d in dirs if d.is_dir() for r in _guard.list_records(str(d)))
    assert still_active == failed


def test_corrupt_record_is_listed_not_fatal(tmp_path):
    (tmp_path / 'bad.json').write_text('{"fault_id": ')
    records = _guard.list_records(str(tmp_path))
    assert records[0]['fault_id'] == 'bad' and 'not valid JSON' in records[0]['corrupt']


def test_guard_process_reverts_at_the_deadline(tmp_path):
    state_dir = str(tmp_path)
    proc, starttime = _sleeper()
    try:
        _guard.write_record(_guard.record_path(state_dir, 'f4'), dict(
            fault_id='f4', expires_at=time.time() + 0.5, lease_expires_at=None,
            revert=[dict(type='kill', pid=proc.pid, starttime=starttime, group=True)]))
        guard = subprocess.Popen([sys.executable, installed_guard(tmp_path), 'watch', state_dir, 'f4'])
        assert guard.wait(timeout=10) == 0
        assert proc.wait(timeout=5) is not None
        history = _guard.read_record(os.path.join(state_dir, 'history', 'f4.json'))
        assert history['reverted_by'] == 'guard:deadline'
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize('record, renewed_at, lease, deadline', [
    ({'expires_at': 100.0, 'lease': 30.0, 'lease_expires_at': 40.0}, None, None, 40.0),
    ({'expires_at': 100.0, 'lease': 30.0, 'lease_expires_at': 40.0}, 50.0, 3.0, 53.0),
    ({'expires_at': 100.0, 'lease': 30.0, 'lease_expires_at': 40.0}, 12.0, 3.0, 15.0),
    ({'expires_at': 100.0, 'lease': 30.0, 'lease_expires_at': 40.0}, 99.0, 3.0, 100.0),
    ({'expires_at': 100.0, 'lease': 30.0, 'lease_expires_at': 40.0}, 50.0, None, 80.0),
    ({'expires_at': 100.0}, 50.0, 3.0, 100.0),
])
def test_the_last_renewal_of_the_lease_file_sets_the_deadline(record, renewed_at, lease, deadline):
    assert _guard.fault_deadline(record, renewed_at, lease) == deadline


def test_the_guard_reverts_one_short_lease_after_the_last_renewal(tmp_path):
    state = str(tmp_path)
    now = time.time()
    _guard.write_lease(state, 'f1', 30)
    _guard.write_record(_guard.record_path(state, 'f1'), dict(
        fault_id='f1', kind='test', expires_at=now + 60, lease=30.0, lease_expires_at=now + 30.0, lease_file=True,
        revert=[]))
    for _tick in range(3):
        time.sleep(0.5)
        _guard.write_lease(state, 'f1', 1)
    last = time.time()
    assert _guard.watch(state, 'f1') == 0
    elapsed = time.time() - last
    assert 0.8 < elapsed < 1.5, elapsed
    entry = _guard.read_record(os.path.join(state, 'history', 'f1.json'))
    assert entry['reverted_by'] == 'guard:lease-expired'
    assert not os.path.exists(_guard.lease_path(state, 'f1'))


def test_guard_reverts_at_once_when_a_watched_helper_dies(tmp_path):
    """A killed delayer ends its fault early: the guard notices and reverts long before the deadline."""
    state_dir = str(tmp_path)
    helper, helper_start = _sleeper()
    scratch = tmp_path / 'rule'
    scratch.write_text('in place')
    _guard.write_record(_guard.record_path(state_dir, 'f5'), dict(
        fault_id='f5', status='active', expires_at=time.time() + 60, lease_expires_at=None,
        details=dict(watch=[dict(name='nfqueue delayer', pid=helper.pid, starttime=helper_start)]),
        revert=[dict(type='remove', path=str(scratch))]))
    guard = subprocess.Popen([sys.executable, installed_guard(tmp_path), 'watch', state_dir, 'f5'])
    try:
        time.sleep(0.5)
        assert guard.poll() is None and scratch.exists()
        helper.kill()
        helper.wait()
        assert guard.wait(timeout=5) == 0
    finally:
        if guard.poll() is None:
            guard.kill()
    assert not scratch.exists()
    assert _guard.read_history(state_dir, 'f5')['reverted_by'] == 'guard:helper-exited:nfqueue delayer'


@pytest.mark.parametrize('status, alive, expected', [
    ('active', True, None),
    ('active', False, 'delayer'),
    ('injecting', False, None),
])
def test_dead_helper_counts_only_once_the_fault_is_active(status, alive, expected):
    helper, starttime = _sleeper()
    try:
        if not alive:
            helper.kill()
            helper.wait()
        record = dict(status=status, details=dict(watch=[dict(name='delayer', pid=helper.pid, starttime=starttime)]))
        assert _guard.dead_helper(record) == expected
    finally:
        if helper.poll() is None:
            helper.kill()


def test_final_effect_file_goes_into_the_history_entry_and_is_removed(tmp_path):
    state_dir = str(tmp_path)
    effect_file = tmp_path / 'f6.nfqueue-stats'
    effect_file.write_text('{"hold": {"p50_ms": 200.3}}')
    _guard.write_record(_guard.record_path(state_dir, 'f6'), dict(
        fault_id='f6', expires_at=1.0, details=dict(final_effect_file=str(effect_file)), revert=[]))
    entry = _guard.revert_fault(state_dir, 'f6', 'test')
    assert entry['final_effect'] == {'hold': {'p50_ms': 200.3}}
    assert not effect_file.exists()
    _guard.write_record(_guard.record_path(state_dir, 'f7'), dict(
        fault_id='f7', expires_at=1.0, details=dict(final_effect_file=str(tmp_path / 'never-written')), revert=[]))
    assert 'final_effect' not in _guard.revert_fault(state_dir, 'f7', 'test')


# ---------------------------------------------------------------- the backstop

NOW = 1000.0


@pytest.mark.parametrize('record, alive, expected', [
    # In its guard's hands: nothing to do.
    (dict(started_at=990.0, expires_at=1100.0, guard=dict(pid=1)), True, None),
    # The guard died: revert at once, long before the deadline.
    (dict(started_at=990.0, expires_at=1100.0, guard=dict(pid=1)), False, 'guard-died'),
    # Past the deadline by more than the grace: the guard is late (stuck) or gone.
    (dict(started_at=900.0, expires_at=NOW - 1.5, guard=dict(pid=1)), True, 'guard-late-deadline'),
    (dict(started_at=900.0, expires_at=NOW - 1.5, guard=dict(pid=1)), False, 'deadline'),
    # Within the grace a live guard still gets its turn.
    (dict(started_at=900.0, expires_at=NOW - 0.5, guard=dict(pid=1)), True, None),
    # A lease that ran out first names the lease.
    (dict(started_at=900.0, expires_at=2000.0, lease_expires_at=NOW - 2, guard=dict(pid=1)), True,
     'guard-late-lease-expired'),
    # A record still being written has no guard yet; after the start grace it never will.
    (dict(started_at=NOW - 2, expires_at=1100.0), False, None),
    (dict(started_at=NOW - 30, expires_at=1100.0), False, 'no-guard'),
    # A corrupt record cannot be reverted by anyone: leave it for halt to report.
    (dict(corrupt='not valid JSON', revert=[]), False, None),
])
def test_adoption_reason(record, alive, expected):
    assert _guard.adoption_reason(record, NOW, alive) == expected


@pytest.mark.parametrize('renewed_at, lease, expected', [
    # The lease file was renewed a moment ago: the record's first lease end does not count.
    (NOW - 1, 3.0, None),
    # Its last renewal is older than its lease plus the grace: a late guard.
    (NOW - 5, 3.0, 'guard-late-lease-expired'),
])
def test_adoption_reason_reads_the_lease_file_as_the_guard_does(renewed_at, lease, expected):
    record = dict(started_at=900.0, expires_at=2000.0, lease=30.0, lease_expires_at=NOW - 10, lease_file=True,
                  guard=dict(pid=1))
    assert _guard.adoption_reason(record, NOW, True, renewed_at, lease) == expected


def test_save_record_keeps_a_persistent_copy_that_the_revert_removes(tmp_path):
    state_dir, persist = str(tmp_path / 'run'), str(tmp_path / 'persist')
    os.makedirs(state_dir)
    os.makedirs(persist)
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    record = dict(fault_id='p1', expires_at=1.0, persist_dir=persist, revert=[dict(type='remove', path=str(scratch))])
    _guard.save_record(state_dir, record)
    assert _guard.read_record(_guard.record_path(persist, 'p1')) == record
    assert _guard.renew_lease(state_dir, 'p1', 5, now=0.0)
    assert _guard.read_record(_guard.record_path(persist, 'p1'))['lease'] == 5
    assert _guard.revert_fault(state_dir, 'p1', 'test')['revert_ok']
    assert not scratch.exists()
    assert _guard.list_records(persist) == [] and _guard.list_records(state_dir) == []


def test_boot_reverts_the_records_of_a_previous_boot_only(tmp_path):
    persist = str(tmp_path)
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    proc, starttime = _sleeper()
    try:
        # A kill step from another boot names a pid that now belongs to someone else: skipped.
        old = dict(fault_id='old', expires_at=1.0, boot_id='another-boot', persist_dir=persist,
                   revert=[dict(type='remove', path=str(scratch)),
                           dict(type='kill', pid=proc.pid, starttime=starttime)])
        current = dict(fault_id='now', expires_at=1.0, boot_id=_guard.boot_id(), persist_dir=persist, revert=[])
        for record in (old, current):
            _guard.write_record(_guard.record_path(persist, record['fault_id']), record)
        assert _guard.boot(persist) == 0
        assert proc.poll() is None, 'a kill step from another boot was executed'
        assert not scratch.exists()
        entry = _guard.read_record(os.path.join(persist, 'history', 'old.json'))
        assert entry['reverted_by'] == 'boot-hook' and entry['revert_ok']
        assert [r['result'] for r in entry['revert_results']] == ['gone with the previous boot', 'removed']
        assert [r['fault_id'] for r in _guard.list_records(persist)] == ['now']
    finally:
        proc.kill()
        proc.wait()


def test_boot_unit_runs_the_persistent_guard_copy_once_at_boot():
    text = _guard.boot_unit_text('/var/lib/magsasa-chaos', '/usr/bin/python3')
    assert 'ExecStart=/usr/bin/python3 /var/lib/magsasa-chaos/magsasa_chaos_guard.py boot /var/lib/magsasa-chaos' in text
    assert 'Type=oneshot' in text and 'WantedBy=multi-user.target' in text
    assert 'After=' in text and 'docker.service' in text
    assert _guard.boot_unit('/var/lib/magsasa-chaos') != _guard.boot_unit('/srv/chaos')


@pytest.mark.parametrize('crontab', ['', 'MAILTO=root\n', '0 * * * * backup\n@reboot other\n'])
def test_cron_line_is_added_and_removed_alone(crontab):
    line = _guard.cron_line('/var/lib/magsasa-chaos', '/usr/bin/python3')
    assert line.startswith('@reboot /usr/bin/python3 /var/lib/magsasa-chaos/magsasa_chaos_guard.py boot ')
    other = _guard.cron_line('/srv/chaos', '/usr/bin/python3')
    installed = crontab + line + '\n' + other + '\n'
    assert _guard.without_cron_line(installed, '/var/lib/magsasa-chaos') == crontab + other + '\n'
    assert _guard.without_cron_line(crontab, '/var/lib/magsasa-chaos') == crontab


@pytest.mark.parametrize('argv', [[], ['watch', 'x'], ['watchdog'], ['backstop', 'x'], ['boot'], ['nope', 'x']])
def test_main_refuses_a_wrong_command_line(argv):
    assert _guard.main(argv) == 2
