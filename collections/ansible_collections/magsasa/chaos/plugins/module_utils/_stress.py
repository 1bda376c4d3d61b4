# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Stress workers shared by chaos_cpu, chaos_memory and chaos_disk.

Workers outlive the task, so they never run from the AnsiballZ temp files: each one is the
program :mod:`_stress_worker`, copied into the state directory like the guard (or stress-ng), in
its own session, carrying its own deadline, so it stops by itself even if the guard were gone. Every worker gets ``MAGSASA_CHAOS_FAULT_ID`` and
``MAGSASA_CHAOS_STATE_DIR`` in its environment, which tells an operator (and the tests) whose it is.

The pure helpers (duty cycle, size and meminfo parsing, CPU lists, byte budgets) are separate
from the side effects and unit-tested.
"""

import json
import math
import os
import sys
import time

from ansible_collections.magsasa.chaos.plugins.module_utils import _stress_worker
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import kill_action, spawn_detached

try:
    import psutil
    HAS_PSUTIL = True
except ImportError:
    psutil = None
    HAS_PSUTIL = False

MIB = 1024 * 1024
CPU_PERIOD = 0.1
DISK_BLOCK = _stress_worker.DISK_BLOCK
DISK_MODES = _stress_worker.DISK_MODES
INTENSITY_CPU_WORKERS = {'light': 2, 'medium': 4, 'heavy': 8}
INTENSITY_MEMORY_MB = {'light': 256, 'medium': 512, 'heavy': 1024}


# ---------------------------------------------------------------- pure helpers

def duty_cycle(load_percent, period=CPU_PERIOD):
    """Seconds busy and idle per period for a worker that loads one CPU by ``load_percent``."""
    load = float(load_percent)
    if not 0 < load <= 100:
        raise ValueError('load_percent must be 1-100, got %s' % load_percent)
    busy = period * load / 100.0
    return busy, period - busy


def parse_cpu_list(text):
    """``'0-2,5'`` (the kernel's list format) -> ``[0, 1, 2, 5]``."""
    cpus = set()
    for part in (text or '').strip().split(','):
        part = part.strip()
        if not part:
            continue
        low, _sep, high = part.partition('-')
        if high:
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(low))
    return sorted(cpus)


def format_cpu_list(cpus):
    return ','.join(str(c) for c in sorted(set(cpus)))


def invalid_cpus(requested, available):
    """The requested CPU numbers that are not among the available ones."""
    return sorted(set(requested) - set(available))


def parse_meminfo(text):
    """``/proc/meminfo`` text -> {field: bytes}."""
    values = {}
    for line in text.splitlines():
        name, _sep, rest = line.partition(':')
        fields = rest.split()
        if not fields:
            continue
        try:
            amount = int(fields[0])
        except ValueError:
            continue
        if len(fields) > 1 and fields[1].lower() == 'kb':
            amount *= 1024
        values[name.strip()] = amount
    return values


def memory_target_mb(size_mb=None, size_percent=None, intensity=None, total_mb=None):
    """The memory to hold, in MB, from exactly one of the three ways to ask for it."""
    if size_mb is not None:
        return float(size_mb)
    if size_percent is not None:
        return float(total_mb) * float(size_percent) / 100.0
    if intensity is not None:
        return float(INTENSITY_MEMORY_MB[intensity])
    raise ValueError('one of size_mb, size_percent or intensity is required')


def default_memory_floor_mb(total_mb):
    """The available memory a memory fault must leave by default: 512 MB or 10 % of RAM."""
    return max(512.0, float(total_mb) * 0.10)


def disk_worker_quotas(total_bytes, count, block=DISK_BLOCK):
    """Split the byte budget over ``count`` workers in whole blocks (at least one each)."""
    share = int(total_bytes // count)
    share -= share % block
    return [max(share, block)] * count


def disk_space_after(free_bytes, size_bytes, fs_total_bytes):
    """Free bytes and free percent of the filesystem once ``size_bytes`` more are written."""
    after = free_bytes - size_bytes
    return after, (100.0 * after / fs_total_bytes if fs_total_bytes else 0.0)


def stress_ng_timeout(remaining):
    """stress-ng's --timeout takes whole seconds; the guard ends it at the exact deadline."""
    return max(1, int(math.ceil(remaining)))


# ---------------------------------------------------------------- processes

def worker_env(ctx):
    env = dict(os.environ)
    env['MAGSASA_CHAOS_FAULT_ID'] = ctx.record['fault_id']
    env['MAGSASA_CHAOS_STATE_DIR'] = ctx.engine.state_dir
    return env


def start_worker(ctx, argv, name):
    """Start one detached worker and register its kill (whole process group) at once."""
    pid, starttime = spawn_detached(argv, env=worker_env(ctx))
    ctx.on_revert(kill_action(pid, starttime, signal_name='SIGTERM', group=True, escalate_after=2.0))
    return dict(pid=pid, starttime=starttime, name=name)


def python_worker_argv(ctx, kind, *args):
    """The argv of a Python worker (``cpu``, ``memory`` or ``disk``): the worker program, installed in
    the fault's directory, with its arguments."""
    program = ctx.install_program(_stress_worker, _stress_worker.PROGRAM_FILENAME)
    return [sys.executable, program, kind] + [str(a) for a in args]


def stress_ng_cpu_argv(stress_ng, workers, load_percent, timeout, cpus=None):
    argv = [stress_ng, '--cpu', str(workers), '--cpu-load', str(load_percent)]
    if load_percent < 100:
        # Busy slices as long as the Python workers' (load % of a 100 ms period), not stress-ng's
        # default random ones of up to 0.5 s, so the load is even over any second.
        argv += ['--cpu-load-slice', str(max(1, int(round(load_percent * CPU_PERIOD * 10))))]
    argv += ['--timeout', '%ds' % timeout, '--quiet']
    if cpus:
        argv += ['--taskset', format_cpu_list(cpus)]
    return argv


# ---------------------------------------------------------------- measurement (psutil)

def _process_tree(pid):
    """The process and its descendants that are still alive."""
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def wait_for_children(pid, count, timeout=3.0):
    """Wait until ``pid`` has ``count`` child processes (stress-ng forks its workers)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if len(psutil.Process(pid).children()) >= count:
                return True
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return False


def measure_cpu(pids, interval=1.5, warmup=0.3):
    """CPU % of the given worker processes (and their children) over ``interval`` seconds.

    Returns ``{'workers': [{'pid', 'name', 'cpu_percent'}], 'total_percent', 'interval'}``; the
    per-worker figure is per process, where 100 means one CPU fully busy. It reads the CPU
    counters of our own workers in /proc; the system under test is not asked anything.
    """
    time.sleep(warmup)
    procs = []
    for pid in pids:
        procs.extend(_process_tree(pid))
    for proc in procs:
        try:
            proc.cpu_percent(None)
        except psutil.NoSuchProcess:
            pass
    time.sleep(interval)
    workers = []
    for proc in procs:
        try:
            workers.append(dict(pid=proc.pid, name=proc.name(), cpu_percent=round(proc.cpu_percent(None), 1)))
        except psutil.NoSuchProcess:
            continue
    return dict(workers=workers, total_percent=round(sum(w['cpu_percent'] for w in workers), 1),
                interval=interval)


def process_rss(pid):
    try:
        return psutil.Process(pid).memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def wait_for_rss(pid, target_bytes, timeout, poll=0.02, stall=2.0):
    """Poll the worker's RSS until it reaches the target or has not grown for ``stall`` seconds;
    return the last RSS. The short poll keeps the moment the fault took effect (the injection time)
    within a few hundredths of a second: on a fleet the hosts' injection spread is made of it."""
    now = time.time()
    deadline = now + timeout
    rss = process_rss(pid)
    grew_at = now
    while rss is not None and time.time() < deadline and rss < target_bytes:
        time.sleep(poll)
        current = process_rss(pid)
        if current != rss:
            grew_at = time.time()
        elif time.time() - grew_at >= stall:
            break
        rss = current
    return rss


def read_progress(paths):
    """Sum the disk workers' progress files: bytes written and read, fsyncs, per worker."""
    totals = dict(bytes_written=0, bytes_read=0, fsyncs=0, workers=[])
    for path in paths:
        try:
            with open(path, 'r') as handle:
                counters = json.load(handle)
        except (IOError, OSError, ValueError):
            continue
        totals['bytes_written'] += int(counters.get('written', 0))
        totals['bytes_read'] += int(counters.get('read', 0))
        totals['fsyncs'] += int(counters.get('fsyncs', 0))
        totals['workers'].append(counters)
    return totals


def tree_size(path):
    """Bytes in the regular files under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
