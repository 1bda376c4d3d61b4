# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _fault
from ansible_collections.magsasa.chaos.plugins.module_utils import _stress_worker as worker


@pytest.fixture(scope='module')
def program(tmp_path_factory):
    """The worker as a fault installs it: copied, with what it imports next to it."""
    return _fault.install_program(worker, worker.PROGRAM_FILENAME, str(tmp_path_factory.mktemp('installed')))


@pytest.mark.parametrize('argv, expected', [
    (['100.5', '50', '0.1', '0,2'], dict(deadline=100.5, load=0.5, period=0.1, cpus=[0, 2])),
    (['7', '100', '0.2', ''], dict(deadline=7.0, load=1.0, period=0.2, cpus=[])),
    (['7', '1', '0.1', '3,'], dict(deadline=7.0, load=0.01, period=0.1, cpus=[3])),
])
def test_parse_cpu_argv(argv, expected):
    assert worker.parse_cpu_argv(argv) == expected


@pytest.mark.parametrize('argv, message', [
    (['7', '0', '0.1', ''], 'LOAD_PERCENT must be 1-100, got 0'),
    (['7', '101', '0.1', ''], 'LOAD_PERCENT must be 1-100, got 101'),
    (['7', '50', '0', ''], 'PERIOD must be greater than 0, got 0'),
    (['7', '50', '0.1'], 'got 3 arguments'),
])
def test_parse_cpu_argv_refuses(argv, message):
    with pytest.raises(worker.UsageError, match=message):
        worker.parse_cpu_argv(argv)


@pytest.mark.parametrize('argv, expected, message', [
    (['4096', '12.5'], dict(size=4096, deadline=12.5), None),
    (['0', '12.5'], None, 'SIZE_BYTES must be greater than 0, got 0'),
    (['4096'], None, 'got 1 arguments'),
])
def test_parse_memory_argv(argv, expected, message):
    if message:
        with pytest.raises(worker.UsageError, match=message):
            worker.parse_memory_argv(argv)
    else:
        assert worker.parse_memory_argv(argv) == expected


@pytest.mark.parametrize('mode', ['write', 'fsync', 'read'])
def test_parse_disk_argv(mode):
    expected = dict(mode=mode, data='/d', quota=2048, deadline=9.0, progress='/p')
    assert worker.parse_disk_argv([mode, '/d', '2048', '9', '/p']) == expected


def test_parse_disk_argv_refuses_an_unknown_mode():
    with pytest.raises(worker.UsageError, match='MODE must be one of write, fsync, read, got append'):
        worker.parse_disk_argv(['append', '/d', '2048', '9', '/p'])


@pytest.mark.parametrize('load, window, quota', [(0.5, 0.1, 0.05), (1.0, 0.1, 0.1), (0.25, 0.04, 0.01), (0.5, 0.0, 0.0)])
def test_cpu_quota(load, window, quota):
    assert worker.cpu_quota(load, window) == pytest.approx(quota)


@pytest.mark.parametrize('size, page, pages', [(4096, 4096, 1), (4097, 4096, 2), (1, 4096, 1), (8192 * 3, 4096, 6)])
def test_touched_pages(size, page, pages):
    assert worker.touched_pages(size, page) == pages


@pytest.mark.parametrize('block, quota, done, chunk', [(10, 25, 0, 10), (10, 25, 20, 5), (10, 25, 25, 0), (10, 25, 30, 0)])
def test_next_chunk(block, quota, done, chunk):
    assert worker.next_chunk(block, quota, done) == chunk


def run_program(program, *args, **kwargs):
    return subprocess.run([sys.executable, program] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=kwargs.get('timeout', 30), check=False)


@pytest.mark.parametrize('args, message', [
    ([], 'the first argument must be cpu, memory or disk'),
    (['gpu', '1'], "got 'gpu'"),
    (['memory', 'lots', '1'], 'invalid literal'),
])
def test_program_refuses_bad_arguments(program, args, message):
    out = run_program(program, *args)
    assert out.returncode == 2 and message in out.stderr and 'usage:' in out.stderr


def test_cpu_worker_burns_its_share_and_stops_at_its_deadline(program):
    started = time.time()
    proc = subprocess.Popen([sys.executable, program, 'cpu', str(started + 1.0), '50', '0.1', ''])
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.time() - started
    assert os.WEXITSTATUS(status) == 0
    assert 0.9 <= elapsed < 5.0
    # Its CPU time never goes above its share (50 % of the second, plus the interpreter's start).
    assert 0.05 < usage.ru_utime + usage.ru_stime < 0.5 + 0.3


def test_memory_worker_holds_its_size_resident(program):
    size = 32 * 1024 * 1024
    proc = subprocess.Popen([sys.executable, program, 'memory', str(size), str(time.time() + 3.0)])
    try:
        rss = 0
        deadline = time.time() + 5
        while time.time() < deadline and rss < size:
            with open('/proc/%d/status' % proc.pid) as handle:
                rss = [int(line.split()[1]) * 1024 for line in handle if line.startswith('VmRSS:')][0]
            time.sleep(0.05)
        assert rss >= size
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize('mode', ['write', 'fsync', 'read'])
def test_disk_worker_reports_its_counters(program, tmp_path, mode):
    data, progress = tmp_path / 'data', tmp_path / 'progress'
    quota = 2 * worker.DISK_BLOCK
    out = run_program(program, 'disk', mode, data, quota, time.time() + 0.8, progress)
    assert out.returncode == 0, out.stderr
    counters = json.loads(progress.read_text())
    assert counters['mode'] == mode and counters['passes'] >= 1
    assert counters['written'] >= quota
    assert data.stat().st_size == quota
    if mode == 'fsync':
        assert counters['fsyncs'] == counters['written'] // worker.DISK_BLOCK
    if mode == 'read':
        assert counters['read'] >= quota
    assert sorted(os.listdir(str(tmp_path))) == ['data', 'progress']
