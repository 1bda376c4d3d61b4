# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _guard, _hold


def test_renewal_rewrites_the_lease_the_guard_reads_and_never_revives_a_gone_fault(tmp_path):
    state = str(tmp_path)
    (tmp_path / 'f1.json').write_text('{}')
    _guard.write_lease(state, 'f1', 30)
    os.utime(_guard.lease_path(state, 'f1'), (1000, 1000))
    out = subprocess.run(['sh', '-c', _hold.renewal_command(state, 'f1', 3)], capture_output=True, text=True,
                         check=True).stdout
    assert _hold.parse_clock(out) is not None and _hold.GONE_MARKER not in out
    renewed_at, lease = _guard.read_lease(state, 'f1')
    assert renewed_at > 1000 and lease == 3.0
    (tmp_path / 'f1.json').unlink()
    os.unlink(_guard.lease_path(state, 'f1'))
    out = subprocess.run(['sh', '-c', _hold.renewal_command(state, 'f1', 3)], capture_output=True, text=True,
                         check=True).stdout
    assert _hold.GONE_MARKER in out and not os.path.exists(_guard.lease_path(state, 'f1'))


def test_renewal_quotes_paths():
    assert "'/tmp/a b/x;y.json'" in _hold.renewal_command('/tmp/a b/', 'x;y', 2.5)


@pytest.mark.parametrize('stdout, expected', [
    ('1700000000.123456789\n', 1700000000.123456789),
    ('1700000000.5\nMAGSASA_CHAOS_FAULT_GONE\n', 1700000000.5),
    ('1700000000\n', None),
    ('1700000000.%N\n', None),
    ('', None),
])
def test_parse_clock(stdout, expected):
    assert _hold.parse_clock(stdout) == expected


@pytest.mark.parametrize('history, ended, reason', [
    ({'reverted_by': 'guard:deadline'}, 'deadline', None),
    ({'reverted_by': 'guard:lease-expired'}, 'lease-lapsed', 'the lease lapsed'),
    ({'reverted_by': 'guard:signal-15'}, 'guard', 'guard:signal-15'),
    ({'reverted_by': 'chaos_faults:absent_all'}, 'reverted-outside', 'chaos_faults:absent_all'),
    (None, 'reverted-outside', 'no history entry'),
])
def test_ended_by(history, ended, reason):
    got_ended, got_reason = _hold.ended_by(history)
    assert got_ended == ended
    assert (reason is None and got_reason is None) or reason in got_reason
