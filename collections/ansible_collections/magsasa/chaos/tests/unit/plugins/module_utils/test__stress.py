# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _stress

MEMINFO = """MemTotal:       24683520 kB
MemFree:        22990000 kB
MemAvailable:   23500000 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""


@pytest.mark.parametrize('load, busy, idle', [
    (100, 0.1, 0.0),
    (50, 0.05, 0.05),
    (1, 0.001, 0.099),
    (25, 0.025, 0.075),
])
def test_duty_cycle_splits_the_period(load, busy, idle):
    got_busy, got_idle = _stress.duty_cycle(load, 0.1)
    assert got_busy == pytest.approx(busy)
    assert got_idle == pytest.approx(idle)
    assert got_busy + got_idle == pytest.approx(0.1)


@pytest.mark.parametrize('load', [0, 150, -5])
def test_duty_cycle_rejects_loads_outside_1_100(load):
    with pytest.raises(ValueError, match='load_percent must be 1-100, got %s' % load):
        _stress.duty_cycle(load)


@pytest.mark.parametrize('text, cpus', [
    ('0-3', [0, 1, 2, 3]),
    ('0,2-3,7', [0, 2, 3, 7]),
    ('1', [1]),
    ('', []),
    ('3,1,1', [1, 3]),
])
def test_parse_cpu_list(text, cpus):
    assert _stress.parse_cpu_list(text) == cpus
    assert _stress.parse_cpu_list(_stress.format_cpu_list(cpus)) == cpus


def test_invalid_cpus_names_the_ones_missing():
    assert _stress.invalid_cpus([0, 1, 5, 9], [0, 1, 2, 3]) == [5, 9]
    assert _stress.invalid_cpus([1], [0, 1]) == []


def test_parse_meminfo_in_bytes():
    info = _stress.parse_meminfo(MEMINFO)
    assert info['MemTotal'] == 24683520 * 1024
    assert info['MemAvailable'] == 23500000 * 1024
    assert info['HugePages_Total'] == 0


@pytest.mark.parametrize('kwargs, expected', [
    (dict(size_mb=300), 300.0),
    (dict(size_percent=10, total_mb=24000), 2400.0),
    (dict(intensity='light'), 256.0),
    (dict(intensity='medium'), 512.0),
    (dict(intensity='heavy'), 1024.0),
])
def test_memory_target_mb(kwargs, expected):
    assert _stress.memory_target_mb(**kwargs) == pytest.approx(expected)


def test_memory_target_needs_a_size():
    with pytest.raises(ValueError):
        _stress.memory_target_mb()


@pytest.mark.parametrize('total_mb, floor', [(1024, 512.0), (24000, 2400.0), (5120, 512.0)])
def test_default_memory_floor(total_mb, floor):
    assert _stress.default_memory_floor_mb(total_mb) == pytest.approx(floor)


@pytest.mark.parametrize('total, count, quotas', [
    (64 * _stress.MIB, 4, [16 * _stress.MIB] * 4),
    (10 * _stress.MIB, 3, [3 * _stress.MIB] * 3),
    (1 * _stress.MIB, 4, [_stress.MIB] * 4),
])
def test_disk_worker_quotas_whole_blocks(total, count, quotas):
    assert _stress.disk_worker_quotas(total, count) == quotas


def test_disk_space_after():
    after, percent = _stress.disk_space_after(50 * _stress.MIB, 10 * _stress.MIB, 100 * _stress.MIB)
    assert after == 40 * _stress.MIB
    assert percent == pytest.approx(40.0)


@pytest.mark.parametrize('remaining, timeout', [(9.2, 10), (10.0, 10), (0.2, 1), (0, 1)])
def test_stress_ng_timeout_whole_seconds(remaining, timeout):
    assert _stress.stress_ng_timeout(remaining) == timeout


def test_stress_ng_cpu_argv():
    argv = _stress.stress_ng_cpu_argv('/usr/bin/stress-ng', 2, 50, 30, [1, 0])
    assert argv == ['/usr/bin/stress-ng', '--cpu', '2', '--cpu-load', '50', '--cpu-load-slice', '50',
                    '--timeout', '30s', '--quiet', '--taskset', '0,1']
    full = _stress.stress_ng_cpu_argv('stress-ng', 1, 100, 5)
    assert '--taskset' not in full and '--cpu-load-slice' not in full
    assert _stress.stress_ng_cpu_argv('stress-ng', 1, 1, 5)[5:7] == ['--cpu-load-slice', '1']


@pytest.mark.skipif(not _stress.HAS_PSUTIL, reason='psutil is part of the dev requirements')
def test_wait_for_rss_sees_the_target_within_a_poll_and_gives_up_on_a_stall():
    import subprocess
    import sys
    import time
    # a real process that holds 48 MiB after 0.3 s, then nothing more
    grow = ("import time; time.sleep(0.3); b = bytearray(48 * 1024 * 1024)\n"
            "for i in range(0, len(b), 4096): b[i] = 1\n"
            "time.sleep(30)")
    proc = subprocess.Popen([sys.executable, '-c', grow])
    try:
        started = time.time()
        rss = _stress.wait_for_rss(proc.pid, 40 * _stress.MIB, timeout=10)
        took = time.time() - started
        assert rss >= 40 * _stress.MIB
        assert 0.3 <= took < 5, took
        # a target it never reaches: it stops once the size has not grown for the stall time
        started = time.time()
        rss = _stress.wait_for_rss(proc.pid, 500 * _stress.MIB, timeout=10, stall=0.5)
        assert rss < 500 * _stress.MIB
        assert 0.5 <= time.time() - started < 5
    finally:
        proc.kill()
        proc.wait()
