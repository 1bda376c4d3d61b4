# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import subprocess
import time

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
    # no history entry yet: the holder reads it again; once there, it comes in the same answer
    assert _hold.gone_history(out) is None
    (tmp_path / 'history').mkdir()
    (tmp_path / 'history' / 'f1.json').write_text('{"fault_id": "f1", "reverted_by": "guard:deadline"}')
    out = subprocess.run(['sh', '-c', _hold.renewal_command(state, 'f1', 3)], capture_output=True, text=True,
                         check=True).stdout
    assert _hold.gone_history(out) == {'fault_id': 'f1', 'reverted_by': 'guard:deadline'}
    assert _hold.parse_clock(out) is not None and not os.path.exists(_guard.lease_path(state, 'f1'))


def test_gone_history_needs_the_marker_and_a_json_object():
    assert _hold.gone_history('1.5\n{"a": 1}') is None
    assert _hold.gone_history('1.5\n%s\n[1]' % _hold.GONE_MARKER) is None
    assert _hold.gone_history('1.5\n%s\n{"a": ' % _hold.GONE_MARKER) is None
    assert _hold.gone_history('1.5\n%s\n{"a": 1}\n' % _hold.GONE_MARKER) == {'a': 1}


def test_renewal_loop_renews_once_per_line_and_ends_when_its_input_closes(tmp_path):
    state = str(tmp_path)
    (tmp_path / 'f1.json').write_text('{}')
    _guard.write_lease(state, 'f1', 30)
    lease = _guard.lease_path(state, 'f1')
    loop = subprocess.Popen(['sh', '-c', _hold.renewal_loop(_hold.renewal_command(state, 'f1', 3))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        answers = []
        for _line in range(2):
            os.utime(lease, (1000, 1000))
            loop.stdin.write('\n')
            loop.stdin.flush()
            answer = loop.stdout.readline() + loop.stdout.readline()
            answers.append(_hold.split_answer(answer))
            assert _guard.read_lease(state, 'f1')[0] > 1000
        assert all(rc == 0 and _hold.parse_clock(out) is not None for out, rc in answers), answers
        # silence renews nothing: the lease keeps its old mtime until the next line
        os.utime(lease, (1000, 1000))
        time.sleep(0.3)
        assert _guard.read_lease(state, 'f1')[0] == 1000
        loop.stdin.close()
        assert loop.wait(timeout=5) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()


def test_renewal_loop_reports_a_failed_renewal_with_its_status_and_message(tmp_path):
    (tmp_path / 'f1.json').write_text('{}')
    (tmp_path / 'f1.lease').mkdir()  # a lease path that cannot be written
    out = subprocess.run(['sh', '-c', _hold.renewal_loop(_hold.renewal_command(str(tmp_path), 'f1', 3))],
                         input='\n', capture_output=True, text=True, timeout=10, check=True).stdout
    text, rc = _hold.split_answer(out)
    assert rc not in (0, None) and 'f1.lease' in text, out


@pytest.mark.parametrize('output, expected', [
    ('1700000000.5\nMAGSASA_CHAOS_TICK_END 0\n', ('1700000000.5\n', 0)),
    ('1700000000.5\nsh: 1: cannot create x: Is a directory\nMAGSASA_CHAOS_TICK_END 2\n',
     ('1700000000.5\nsh: 1: cannot create x: Is a directory\n', 2)),
    ('1700000000.5\n', ('1700000000.5\n', None)),
    ('MAGSASA_CHAOS_TICK_END\n', ('', None)),
])
def test_split_answer(output, expected):
    assert _hold.split_answer(output) == expected


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
