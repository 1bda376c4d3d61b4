# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest

from ansible_collections.magsasa.chaos.plugins.callback.chaos_report import record_identity, to_plain


class TaggedStr(str):
    """Stands in for Ansible's tagged strings: a str subclass json can dump but we must not keep."""


RECORD = {
    'name': 'Light CPU Stress', 'type': 'cpu', 'environment': 'staging', 'targets': ['app1', 'app2'],
    'status': 'completed',
    'fault': {'fault_ids': ['cpu-1'], 'started_at': 1764440000.12},
    'window': {'baseline_start': 1764439995.0, 'fault_start': 1764440000.12},
    'metrics': {'error_rate_percent': 1.0},
}


def test_to_plain_copies_into_builtin_types():
    value = to_plain({TaggedStr('name'): TaggedStr('x'), 'items': (1, 2.5, True, None), 'nested': {'s': {TaggedStr('a')}}})
    assert value == {'name': 'x', 'items': [1, 2.5, True, None], 'nested': {'s': ['a']}}
    assert not isinstance(value['name'], TaggedStr) and not isinstance(list(value)[0], TaggedStr)
    assert json.loads(json.dumps(value)) == value


@pytest.mark.parametrize('change, same', [
    (lambda r: r, True),
    (lambda r: dict(reversed(list(r.items()))), True),           # key order
    (lambda r: dict(r, targets=['app2', 'app1']), True),          # host order of the play
    (lambda r: dict(r, metrics={'error_rate_percent': 1.0, 'extra': 1}), True),  # same run, richer copy
    (lambda r: dict(r, fault=dict(r['fault'], started_at=1764440100.0)), False),  # the scenario run again
    (lambda r: dict(r, name='Heavy CPU Stress'), False),
    (lambda r: dict(r, status='aborted'), False),
])
def test_record_identity(change, same):
    assert (record_identity(change(dict(RECORD))) == record_identity(RECORD)) is same


def test_records_without_times_collapse_only_when_identical():
    skipped = {'name': 'Database Downtime', 'status': 'skipped', 'reason': 'not landed', 'fault': {}, 'window': {}}
    assert record_identity(dict(skipped)) == record_identity(skipped)
    assert record_identity(dict(skipped, reason='other')) != record_identity(skipped)
