# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import os
import stat
import threading

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic


@pytest.mark.parametrize('content, expected', [('text ü', 'text ü'.encode('utf-8')), (b'\x00\xff', b'\x00\xff'), ('', b'')])
@pytest.mark.parametrize('fsync', [False, True])
def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path, content, expected, fsync):
    target = tmp_path / 'file'
    target.write_bytes(b'old content that is longer')
    _atomic.write_atomic(str(target), content, fsync=fsync)
    assert target.read_bytes() == expected
    assert os.listdir(str(tmp_path)) == ['file']


@pytest.mark.parametrize('mode', [0o600, 0o644])
def test_write_atomic_mode(tmp_path, mode):
    target = tmp_path / 'file'
    old = os.umask(0o022)
    try:
        _atomic.write_atomic(str(target), 'x', mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == mode


def test_write_json_atomic_sorted_and_indented(tmp_path):
    target = tmp_path / 'record.json'
    _atomic.write_json_atomic(str(target), dict(b=1, a=[1, 2]), indent=1)
    assert target.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}'
    _atomic.write_json_atomic(str(target), dict(z=None))
    assert json.loads(target.read_text()) == dict(z=None)


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / 'record.json'
    target.write_text('{"kept": true}')
    with pytest.raises(TypeError):
        _atomic.write_json_atomic(str(target), dict(bad=object()))
    with pytest.raises(OSError):
        _atomic.write_atomic(str(tmp_path / 'no-such-dir' / 'f'), 'x')
    assert json.loads(target.read_text()) == dict(kept=True)
    assert os.listdir(str(tmp_path)) == ['record.json']


def test_replace_if_changed(tmp_path):
    target = tmp_path / 'unit'
    assert _atomic.replace_if_changed(str(target), 'one\n') is True
    before = os.stat(str(target)).st_mtime_ns
    assert _atomic.replace_if_changed(str(target), 'one\n') is False
    assert os.stat(str(target)).st_mtime_ns == before
    assert _atomic.replace_if_changed(str(target), 'two\n') is True and target.read_text() == 'two\n'
    target.write_bytes(b'\xff not text')
    assert _atomic.replace_if_changed(str(target), 'three') is True and target.read_text() == 'three'
    assert os.listdir(str(tmp_path)) == ['unit']


def test_temporary_paths_differ_per_thread(tmp_path):
    names = []
    thread = threading.Thread(target=lambda: names.append(_atomic.temporary_path('/x/f')))
    thread.start()
    thread.join()
    names.append(_atomic.temporary_path('/x/f'))
    assert len(set(names)) == 2 and all(n.startswith('/x/f.tmp.%d.' % os.getpid()) for n in names)


def test_concurrent_writers_never_leave_half_a_file(tmp_path):
    target = str(tmp_path / 'state.json')
    _atomic.write_json_atomic(target, dict(n=0, pad='x' * 50000))
    stop = threading.Event()
    seen = []

    def write(base):
        for n in range(base, base + 200):
            _atomic.write_json_atomic(target, dict(n=n, pad='x' * 50000))

    def read():
        while not stop.is_set():
            with open(target) as handle:
                seen.append(json.load(handle)['n'])

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(base,)) for base in (1000, 2000)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    assert seen and os.listdir(str(tmp_path)) == ['state.json']
