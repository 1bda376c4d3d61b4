# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _process

TABLE = [
    dict(pid=1, ppid=0, name='init', cmdline=['/sbin/init'], state='S', starttime='1'),
    dict(pid=10, ppid=1, name='gunicorn', cmdline=['/usr/bin/python3', '/usr/bin/gunicorn', 'app:api'],
         state='S', starttime='100'),
    dict(pid=11, ppid=10, name='gunicorn', cmdline=['gunicorn: worker [app:api]'], state='S', starttime='101'),
    dict(pid=12, ppid=10, name='gunicorn', cmdline=['gunicorn: worker [app:api]'], state='S', starttime='102'),
    dict(pid=20, ppid=1, name='sleep', cmdline=['/bin/sleep', '100'], state='S', starttime='200'),
    dict(pid=30, ppid=1, name='python3', cmdline=['/usr/bin/python3', '-m', 'http.server'], state='S',
         starttime='300'),
]


def pids(procs):
    return sorted(p['pid'] for p in procs)


@pytest.mark.parametrize('name, expected', [
    ('gunicorn', [10, 11, 12]),
    ('sleep', [20]),
    ('python3', [10, 30]),
    ('sle', []),
])
def test_match_name_is_exact(name, expected):
    assert pids(_process.match_name(TABLE, name)) == expected


@pytest.mark.parametrize('pattern, expected', [
    ('gunicorn: worker', [11, 12]),
    ('http\\.server', [30]),
    ('^/bin/sleep 100$', [20]),
    ('nothing-like-this', []),
])
def test_match_cmdline_regex(pattern, expected):
    assert pids(_process.match_cmdline(TABLE, pattern)) == expected


def test_ancestors_walk_to_init():
    by_pid = dict((p['pid'], p) for p in TABLE)
    assert _process.ancestors(12, by_pid) == [12, 10, 1]


def test_protected_pids_hold_init_and_this_process_chain():
    protected = _process.protected_pids(os.getpid())
    assert 1 in protected
    assert os.getpid() in protected
    assert os.getppid() in protected


@pytest.mark.parametrize('text, pid', [('1234\n', 1234), (' 77 ', 77), ('42\nextra\n', 42)])
def test_parse_pidfile(text, pid):
    assert _process.parse_pidfile(text) == pid


@pytest.mark.parametrize('text', ['', 'abc', '0', '-5'])
def test_parse_pidfile_rejects(text):
    with pytest.raises(ValueError):
        _process.parse_pidfile(text)


def test_parse_systemctl_show():
    text = 'LoadState=loaded\nMainPID=812\nControlGroup=/system.slice/nginx.service\n'
    assert _process.parse_systemctl_show(text) == dict(LoadState='loaded', MainPID='812',
                                                       ControlGroup='/system.slice/nginx.service')


@pytest.mark.parametrize('text, pid', [('4321\n', 4321), ('0\n', None),
                                       ('demo-api: ERROR (no such process)\n', None), ('', None)])
def test_parse_supervisor_pid(text, pid):
    assert _process.parse_supervisor_pid(text) == pid


def test_read_cgroup_pids(tmp_path):
    group = tmp_path / 'system.slice' / 'demo.service'
    group.mkdir(parents=True)
    (group / 'cgroup.procs').write_text('10\n11\n')
    assert _process.read_cgroup_pids('/system.slice/demo.service', root=str(tmp_path)) == [10, 11]
    assert _process.read_cgroup_pids('/system.slice/missing.service', root=str(tmp_path)) == []


def test_process_table_sees_this_process():
    table = _process.process_table()
    me = [p for p in table if p['pid'] == os.getpid()]
    assert me and me[0]['ppid'] == os.getppid()


def test_is_fault_guard():
    guard = dict(TABLE[0], cmdline=['/usr/bin/python3', '/run/magsasa-chaos/magsasa_chaos_guard.py', 'watch',
                                    '/run/magsasa-chaos', 'cpu-1'])
    assert _process.is_fault_guard(guard)
    watchdog = dict(TABLE[0], cmdline=['/usr/bin/python3', '/run/magsasa-chaos/magsasa_chaos_guard.py', 'watchdog',
                                       '/run/magsasa-chaos'])
    assert _process.is_fault_guard(watchdog)
    assert not _process.is_fault_guard(dict(TABLE[0], cmdline=['vi', 'magsasa_chaos_guard.py']))
    assert not _process.is_fault_guard(TABLE[4])


SUPERVISED = dict(pid=40, ppid=7, name='python3', cmdline=['/usr/bin/python3', 'api.py'], state='S', starttime='400')


@pytest.mark.parametrize('candidate, is_successor', [
    (dict(SUPERVISED, pid=41, starttime='450'), True),
    (dict(SUPERVISED, starttime='450'), True),  # the same pid, reused by the new process
    (dict(SUPERVISED), False),  # the killed process itself, still listed
    (dict(SUPERVISED, pid=41, ppid=8, starttime='450'), False),  # another parent
    (dict(SUPERVISED, pid=41, cmdline=['/usr/bin/python3', 'worker.py'], starttime='450'), False),
    (dict(SUPERVISED, pid=41, cmdline=['/usr/bin/python3', '/usr/bin/supervisord'], starttime='450'), False),
])
def test_successors_same_parent_same_command_line(candidate, is_successor):
    before = set([(SUPERVISED['pid'], SUPERVISED['starttime'])])
    assert _process.successors([candidate], [SUPERVISED], before) == ([candidate] if is_successor else [])


def test_children_reads_the_kernel_children_files():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        found = _process.children(os.getpid())
        assert found is not None, 'this kernel has no /proc/<pid>/task/<tid>/children'
        assert child.pid in [p['pid'] for p in found]
        assert all(p['ppid'] == os.getpid() for p in found)
    finally:
        child.kill()
        child.wait()
    assert _process.children(2 ** 22 + 1) == []
