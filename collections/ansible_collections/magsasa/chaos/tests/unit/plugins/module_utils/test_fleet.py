# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _fleet

HOSTS = ['web1', 'web2', 'web3']


@pytest.mark.parametrize('matched, in_play, max_hosts, targets, skip, note', [
    (HOSTS, HOSTS, 10, HOSTS, None, None),
    (HOSTS, ['web2', 'db1'], 10, ['web2'], None, None),
    (HOSTS, ['db1'], 10, [], 'none of them in this run', None),
    ([], HOSTS, 10, [], "no host in this inventory matches targets 'app'", None),
    (HOSTS, HOSTS, 2, ['web1', 'web2'], None, 'resolve to 3 hosts, more than chaos_max_hosts 2'),
])
def test_select_targets(matched, in_play, max_hosts, targets, skip, note):
    got, got_skip, got_note = _fleet.select_targets(matched, in_play, max_hosts, 'app')
    assert got == targets
    assert (skip is None and got_skip is None) or skip in got_skip
    assert (note is None and got_note is None) or note in got_note


def test_select_targets_refuses_a_cap_below_one():
    with pytest.raises(ValueError, match='chaos_max_hosts must be at least 1, got 0'):
        _fleet.select_targets(HOSTS, HOSTS, 0, 'app')


@pytest.mark.parametrize('result, message', [
    ({'changed': True}, None),
    ({'skipped': True}, None),
    ({'unreachable': True, 'msg': 'Failed to connect to the host'}, 'unreachable: Failed to connect to the host'),
    ({'failed': True, 'msg': 'not enough memory'}, 'not enough memory'),
    ({'failed': True, 'msg': 'Module result deserialization failed: No start of json char found',
      'module_stderr': 'Error response from daemon: container abc is not running\n'},
     'Module result deserialization failed: No start of json char found: '
     'Error response from daemon: container abc is not running'),
    (None, None),
])
def test_task_error_keeps_the_real_message(result, message):
    assert _fleet.task_error(result) == message


def test_host_part_puts_the_window_in_the_controller_clock():
    part = _fleet.host_part(
        'web1', inject={'injected_at': 1000.5, 'state_dir': '/run/x', 'start_slack': -0.25},
        hold={'ended': 'deadline', 'clock_offset': 0.5, 'reason': None},
        residue={'history': [{'fault_id': 'f', 'injected_at': 1000.5, 'reverted_at': 1010.5, 'reverted_by': 'guard:deadline'}]})
    assert part == {'host': 'web1', 'status': 'ok', 'ended': 'deadline', 'reason': None, 'clock_offset': 0.5,
                    'injected_at': 1000.0, 'reverted_at': 1010.0, 'held_seconds': 10.0, 'revert_seconds': 0.0,
                    'reverted_by': 'guard:deadline', 'start_slack': -0.25}


@pytest.mark.parametrize('hold, revert_by, ended, status', [
    ({'ended': 'lease-lapsed', 'reason': 'the lease lapsed'}, 'guard:lease-expired', 'lease-lapsed', 'failed'),
    ({'ended': 'stopped', 'reason': 'stop-condition on web2'}, 'chaos_faults:absent', 'revert', 'ok'),
    ({'ended': 'stop-condition', 'reason': 'stop condition breached'}, 'chaos_faults:absent', 'stop-condition', 'ok'),
    ({'ended': 'error', 'reason': 'renewing the lease failed (rc 1): read-only file system'}, None, 'error', 'failed'),
    ({'ended': 'unreachable', 'reason': 'ssh: connect to host 10.0.0.3 port 22: Connection timed out'}, None,
     'unreachable', 'failed'),
    ({'ended': 'reverted-outside', 'reason': 'halt'}, 'chaos_faults:absent_all', 'reverted-outside', 'ok'),
    ({'ended': 'guard', 'reason': 'signal'}, 'guard:signal-15', 'guard', 'failed'),
])
def test_host_part_says_how_the_host_ended(hold, revert_by, ended, status):
    history = [{'injected_at': 1.0, 'reverted_at': 5.0, 'reverted_by': revert_by}] if revert_by else []
    part = _fleet.host_part('web1', inject={'injected_at': 1.0}, hold=hold, residue={'history': history})
    assert (part['ended'], part['status']) == (ended, status)


def test_an_unreachable_host_is_a_failed_part_with_the_connection_error():
    part = _fleet.host_part('web3', inject={'unreachable': True, 'msg': 'docker: container fleet-3 is not running'})
    assert part['status'] == 'failed' and part['ended'] == 'unreachable'
    assert part['reason'] == 'unreachable: docker: container fleet-3 is not running'


def test_a_link_lost_during_the_hold_keeps_the_holds_connection_error():
    lost = 'Failed to connect to the host via ssh: ssh: connect to host 10.0.0.3 port 22: Connection timed out'
    part = _fleet.host_part('web3', inject={'injected_at': 1.0}, hold={'ended': 'unreachable', 'reason': lost},
                            revert={'unreachable': True, 'msg': 'Data could not be sent to remote host'},
                            residue={'unreachable': True, 'msg': 'Data could not be sent to remote host'})
    assert (part['status'], part['ended'], part['reason']) == ('failed', 'unreachable', lost)
    assert part['reverted_at'] is None and part['reverted_by'] is None


def test_a_host_lost_only_at_the_rollback_is_unreachable():
    part = _fleet.host_part('web3', inject={'injected_at': 1.0}, hold={'ended': 'deadline'},
                            revert={'unreachable': True, 'msg': 'ssh: connect to host web3 port 22: No route to host'})
    assert (part['status'], part['ended']) == ('failed', 'unreachable')
    assert part['reason'] == 'unreachable: ssh: connect to host web3 port 22: No route to host'


@pytest.mark.parametrize('parts, status, reason', [
    ([{'host': 'a', 'status': 'ok', 'ended': 'deadline'}], None, None),
    ([{'host': 'a', 'status': 'ok', 'ended': 'deadline'}, {'host': 'b', 'status': 'failed', 'ended': 'error', 'reason': 'boom'}],
     'failed', 'b: error - boom'),
    ([{'host': 'a', 'status': 'ok', 'ended': 'stop-condition', 'reason': 'stop condition breached: x'}],
     'aborted', 'a: stop condition breached: x'),
])
def test_experiment_outcome(parts, status, reason):
    assert _fleet.experiment_outcome(parts) == (status, reason)


@pytest.mark.parametrize('times, expected', [([], None), ([5.0], 0.0), ([5.0, 5.4, 6.25], 1.25)])
def test_spread(times, expected):
    assert _fleet.spread([{'injected_at': t} for t in times] + [{'injected_at': None}]) == expected


def test_busy_faults_from_the_lock_or_from_a_fresh_preflight():
    hostvars = {
        # asked by the experiment's own lock query
        'a': {'chaos_experiment_lock': {'faults': [{'fault_id': 'cpu-1'}]}},
        # the lock skipped: the run's preflight answered moments ago
        'b': {'chaos_experiment_lock': {'skipped': True}, 'chaos_experiment_preflight_host': {'faults': [{'fault_id': 'disk-2'}]}},
        'c': {'chaos_experiment_lock': {'faults': []}, 'chaos_experiment_preflight_host': {'faults': [{'fault_id': 'old'}]}},
    }
    assert _fleet.busy_faults(['a', 'b', 'c'], hostvars, preflight_fresh=True) == ['cpu-1', 'disk-2']
    # a stale preflight answer (a later experiment) never counts
    assert _fleet.busy_faults(['a', 'b', 'c'], hostvars, preflight_fresh=False) == ['cpu-1']
    assert _fleet.busy_faults(['missing'], hostvars, preflight_fresh=True) == []


def test_lock_hosts_asks_every_target_but_those_a_fresh_preflight_answered():
    hostvars = {
        'a': {'chaos_experiment_preflight_host': {'faults': []}},
        'b': {'chaos_experiment_preflight_host': {'skipped': True}},  # not in the preflight plan
        'c': {},
    }
    assert _fleet.lock_hosts(['a', 'b', 'c'], hostvars, preflight_fresh=True) == ['b', 'c']
    # a later experiment asks every target: the preflight's answer is stale by then
    assert _fleet.lock_hosts(['a', 'b', 'c'], hostvars, preflight_fresh=False) == ['a', 'b', 'c']


def test_rollback_hosts_skips_only_hosts_whose_holder_saw_every_revert_step_succeed():
    hostvars = {
        'clean': {'chaos_experiment_hold': {'history': {'revert_ok': True}}},
        'failed-step': {'chaos_experiment_hold': {'history': {'revert_ok': False}}},
        'stopped-early': {'chaos_experiment_hold': {'ended': 'stopped'}},
        'unreachable': {'chaos_experiment_hold': {'unreachable': True, 'msg': 'lost'}},
        'never-held': {},
    }
    assert _fleet.rollback_hosts(list(hostvars), hostvars) == ['failed-step', 'stopped-early', 'unreachable', 'never-held']
