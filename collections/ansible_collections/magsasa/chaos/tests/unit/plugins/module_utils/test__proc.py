# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _databases, _proc

STAT = '4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0'


def stat_line(pid, state='S', ppid=1, starttime='1000', name='sleep'):
    return '%d (%s) %s %d %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %s 0 0\n' % (
        pid, name, state, ppid, pid, pid, starttime)


def fake_proc(tmp_path, *processes):
    """A /proc of our own: one ``<pid>/stat`` per (pid, state, ppid, starttime)."""
    root = tmp_path / 'proc'
    for pid, state, ppid, starttime in processes:
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / 'stat').write_text(stat_line(pid, state, ppid, starttime))
    return str(root)


def test_parse_stat_with_spaces_and_parens_in_name():
    stat = _proc.parse_stat(STAT)
    assert (stat['state'], stat['ppid'], stat['starttime']) == ('S', 17, '98765')
    assert (stat['pgrp'], stat['session']) == (4242, 4242)


@pytest.mark.parametrize('text', [STAT, STAT.encode('utf-8'), STAT.replace('my (odd) name', 'a) b ) c')])
def test_parse_stat_takes_text_or_bytes_and_any_name(text):
    assert _proc.parse_stat(text)['starttime'] == '98765'


@pytest.mark.parametrize('text', ['', '4242 (x) S 1 2', 'garbage'])
def test_parse_stat_refuses_what_is_not_a_stat_line(text):
    with pytest.raises(ValueError):
        _proc.parse_stat(text)


@pytest.mark.parametrize('value, number', [('SIGKILL', 9), ('KILL', 9), ('kill', 9), ('9', 9), ('SIGTERM', 15),
                                           ('hup', 1), (15, 15), (' term ', 15)])
def test_signal_number(value, number):
    assert _proc.signal_number(value) == number


@pytest.mark.parametrize('value', ['SIGNOPE', '999', 'kil', '', -1])
def test_signal_number_rejects(value):
    with pytest.raises(ValueError):
        _proc.signal_number(value)


@pytest.mark.parametrize('pid, start, running', [
    (10, '1000', True),    # the same process
    (10, None, True),      # any process with that pid
    (10, '999', False),    # the pid now names another process
    (11, '1000', False),   # a zombie
    (11, None, False),
    (12, '1000', False),   # dead
    (13, None, False),     # no such pid
])
def test_is_running_by_pid_and_start_time(tmp_path, pid, start, running):
    proc = fake_proc(tmp_path, (10, 'S', 1, '1000'), (11, 'Z', 1, '1000'), (12, 'X', 1, '1000'))
    assert _proc.is_running(pid, start, proc) is running


def test_starttime_and_parent(tmp_path):
    proc = fake_proc(tmp_path, (10, 'R', 7, '1234'), (11, 'Z', 10, '1300'))
    assert _proc.starttime(10, proc) == '1234' and _proc.starttime(11, proc) is None
    assert _proc.parent(11, proc) == 10 and _proc.parent(99, proc) is None


def test_a_real_process_its_zombie_and_its_end():
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        start = _proc.starttime(child.pid)
        assert start is not None and start.isdigit()
        assert _proc.is_running(child.pid, start) and _proc.parent(child.pid) == os.getpid()
        assert not _proc.is_running(child.pid, str(int(start) + 1))
        child.kill()
        deadline = time.time() + 10
        while _proc.is_running(child.pid) and time.time() < deadline:
            time.sleep(0.02)
        # Not reaped yet: a zombie, which runs no more.
        assert _proc.read_stat(child.pid)['state'] == 'Z' and not _proc.is_running(child.pid, start)
    finally:
        child.kill()
        child.wait()
    assert _proc.read_stat(child.pid) is None or not _proc.is_running(child.pid, start)


# ---------------------------------------------------------------- the database server, by pid and start time

def sleeper(children=0):
    """A stand-in server that forks ``children`` sleeping children, each in the same process group."""
    code = ('import os, time\nfor _ in range(%d):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n'
            'time.sleep(60)\n' % children)
    return subprocess.Popen([sys.executable, '-c', code], start_new_session=True)


def wait_children(pid, count, timeout=10):
    deadline = time.time() + timeout
    while len(_databases.children_of(pid)) < count and time.time() < deadline:
        time.sleep(0.02)
    return _databases.children_of(pid)


def test_a_reused_pid_is_never_taken_for_the_server():
    server = sleeper()
    try:
        start = _databases.process_starttime(server.pid)
        # The pid the fault found now names a process that started at another time: nothing is signalled.
        with pytest.raises(_databases.DatabaseError, match='is no longer the server found before the fault'):
            _databases.stop_server_process(server.pid, str(int(start) + 1), 'crash', 5)
        assert _databases.process_alive(server.pid, start) and server.poll() is None
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize('mode', ['clean', 'crash'])
def test_stop_server_process(mode):
    server = sleeper(children=2)
    try:
        children = wait_children(server.pid, 2)
        assert len(children) == 2 and all(start for _pid, start in children)
        start = _databases.process_starttime(server.pid)

        def reap():
            # We are the parent of the stand-in; a real server's parent reaps it the same way.
            while server.poll() is None:
                time.sleep(0.02)
        reaper = threading.Thread(target=reap)
        reaper.start()
        _databases.stop_server_process(server.pid, start, mode, 10)
        reaper.join(10)
        assert server.returncode == (-15 if mode == 'clean' else -9)
        alive = [pid for pid, child_start in children if _databases.process_alive(pid, child_start)]
        # A crash takes every process of the server at once; a clean stop leaves that to the server.
        assert alive == ([] if mode == 'crash' else [pid for pid, _start in children])
    finally:
        # The stand-in and its children share its process group (a clean stop leaves the children).
        try:
            os.killpg(server.pid, 9)
        except OSError:
            pass
        server.wait()


# ---------------------------------------------------------------- programs that import _proc, as installed

@pytest.mark.parametrize('program, filename', [
    ('_guard', 'magsasa_chaos_guard.py'),
    ('_db_start', 'magsasa_chaos_db_start.py'),
])
def test_an_installed_program_gets_proc_next_to_it_and_runs_without_the_collection(tmp_path, program, filename):
    from ansible_collections.magsasa.chaos.plugins.module_utils import _db_start, _fault, _guard
    module = dict(_guard=_guard, _db_start=_db_start)[program]
    directory = tmp_path / 'state'
    path = _fault.install_program(module, filename, str(directory))
    needs = [needed.PROGRAM_FILENAME for needed in module.PROGRAM_NEEDS]
    assert _proc.PROGRAM_FILENAME in needs
    assert sorted(os.listdir(str(directory))) == sorted([filename] + needs)
    for needed in module.PROGRAM_NEEDS:
        with open(needed.__file__) as handle:
            assert (directory / needed.PROGRAM_FILENAME).read_text() == handle.read()
    # -E -s: no PYTHONPATH, no user site; the collection is not importable, only what lies next to it.
    out = subprocess.run([sys.executable, '-E', '-s', path], capture_output=True, text=True, timeout=30,
                         cwd=str(tmp_path), check=False)
    assert out.returncode == 2 and out.stderr.startswith('usage: %s' % filename), out.stderr
    # Installing again leaves identical files alone.
    before = os.stat(path).st_mtime_ns
    assert _fault.install_program(module, filename, str(directory)) == path and os.stat(path).st_mtime_ns == before


def test_the_probe_sampler_installs_itself_with_proc_and_atomic_and_runs_without_the_collection(tmp_path):
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic, _probe
    directory = tmp_path / 'probes'
    path = _atomic.install_program(_probe, 'p1.sampler.py', str(directory))
    assert sorted(os.listdir(str(directory))) == sorted(['p1.sampler.py', _proc.PROGRAM_FILENAME, _atomic.PROGRAM_FILENAME])
    # -E -s: the collection is not importable, so this only gets past the imports with the copies next to it.
    missing = str(tmp_path / 'missing.config.json')
    out = subprocess.run([sys.executable, '-E', '-s', path, missing], capture_output=True, text=True, timeout=30,
                         cwd=str(tmp_path), check=False)
    assert out.returncode == 1 and 'ProbeError: cannot read probe config %s' % missing in out.stderr, out.stderr
