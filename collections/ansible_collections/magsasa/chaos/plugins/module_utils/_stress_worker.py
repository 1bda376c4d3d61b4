# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The stress workers of chaos_cpu, chaos_memory and chaos_disk, as one program.

A worker outlives the task that starts it, so it never runs from the AnsiballZ temp files: this
file is copied verbatim into the fault state directory (like the guard) and started from there,
one detached process per worker, each carrying its own deadline so it stops by itself even if the
guard were gone::

    python3 magsasa_chaos_stress_worker.py cpu    DEADLINE LOAD_PERCENT PERIOD CPU_LIST
    python3 magsasa_chaos_stress_worker.py memory SIZE_BYTES DEADLINE
    python3 magsasa_chaos_stress_worker.py disk   MODE DATA_FILE QUOTA_BYTES DEADLINE PROGRESS_FILE

It must stay standalone: Python 3.8+ standard library only, no Ansible imports, apart from
``_atomic``, copied next to it (:data:`PROGRAM_NEEDS`). The argument parsing and the arithmetic
are plain functions, unit-tested on their own.
"""

import mmap
import os
import sys
import time

try:
    # The copy in a fault's directory imports the copy of _atomic installed next to it.
    import magsasa_chaos_atomic as _atomic
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic

PROGRAM_NEEDS = (_atomic,)
PROGRAM_FILENAME = 'magsasa_chaos_stress_worker.py'
DISK_BLOCK = 1024 * 1024
DISK_MODES = ('write', 'fsync', 'read')
PROGRESS_EVERY = 0.5

USAGE = ('usage: %s cpu DEADLINE LOAD_PERCENT PERIOD CPU_LIST | memory SIZE_BYTES DEADLINE'
         ' | disk MODE DATA_FILE QUOTA_BYTES DEADLINE PROGRESS_FILE\n' % PROGRAM_FILENAME)


class UsageError(Exception):
    """Arguments the program cannot run with."""


# ---------------------------------------------------------------- pure parts

def parse_cpu_argv(argv):
    """``DEADLINE LOAD_PERCENT PERIOD CPU_LIST`` -> dict(deadline, load (0-1], period, cpus)."""
    if len(argv) != 4:
        raise UsageError('cpu takes DEADLINE LOAD_PERCENT PERIOD CPU_LIST, got %d arguments' % len(argv))
    load = float(argv[1])
    if not 0 < load <= 100:
        raise UsageError('LOAD_PERCENT must be 1-100, got %s' % argv[1])
    period = float(argv[2])
    if period <= 0:
        raise UsageError('PERIOD must be greater than 0, got %s' % argv[2])
    return dict(deadline=float(argv[0]), load=load / 100.0, period=period,
                cpus=[int(c) for c in argv[3].split(',') if c])


def parse_memory_argv(argv):
    """``SIZE_BYTES DEADLINE`` -> dict(size, deadline)."""
    if len(argv) != 2:
        raise UsageError('memory takes SIZE_BYTES DEADLINE, got %d arguments' % len(argv))
    size = int(argv[0])
    if size <= 0:
        raise UsageError('SIZE_BYTES must be greater than 0, got %s' % argv[0])
    return dict(size=size, deadline=float(argv[1]))


def parse_disk_argv(argv):
    """``MODE DATA_FILE QUOTA_BYTES DEADLINE PROGRESS_FILE`` -> dict(mode, data, quota, deadline, progress)."""
    if len(argv) != 5:
        raise UsageError('disk takes MODE DATA_FILE QUOTA_BYTES DEADLINE PROGRESS_FILE, got %d arguments' % len(argv))
    if argv[0] not in DISK_MODES:
        raise UsageError('MODE must be one of %s, got %s' % (', '.join(DISK_MODES), argv[0]))
    return dict(mode=argv[0], data=argv[1], quota=int(argv[2]), deadline=float(argv[3]), progress=argv[4])


def cpu_quota(load, window):
    """Seconds of CPU time to burn in a ``window`` (at most one period) to load one CPU by ``load`` (0-1]."""
    return load * window


def touched_pages(size, page):
    """How many pages a buffer of ``size`` bytes spans (one byte is written in each)."""
    return len(range(0, size, page))


def next_chunk(block_size, quota, done):
    """Bytes to write next so that no more than ``quota`` is written in all."""
    return max(0, min(block_size, quota - done))


# ---------------------------------------------------------------- the workers

def run_cpu(deadline, load, period, cpus):
    """Load one CPU by ``load`` until ``deadline``, in slices of ``period`` seconds."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    while True:
        now = time.time()
        if now >= deadline:
            return 0
        window = min(period, deadline - now)
        window_end = time.monotonic() + window
        # Count our own CPU time, not wall time: when other work shares the CPU, we still
        # consume load % of it instead of spinning on a clock while descheduled.
        cpu_start = time.process_time()
        quota = cpu_quota(load, window)
        while time.process_time() - cpu_start < quota and time.monotonic() < window_end:
            pass
        rest = window_end - time.monotonic()
        if rest > 0:
            time.sleep(rest)


def run_memory(size, deadline):
    """Hold ``size`` bytes, every page of them resident, until ``deadline``."""
    page = mmap.PAGESIZE
    held = bytearray(size)
    held[::page] = b'\x01' * touched_pages(size, page)
    while True:
        left = deadline - time.time()
        if left <= 0:
            return 0
        time.sleep(min(left, 1.0))


class DiskWorker(object):
    """Writes (``write``), writes with an fsync per block (``fsync``) or reads back (``read``) a file of
    ``quota`` bytes until ``deadline``, reporting its counters to ``progress`` about twice a second."""

    def __init__(self, mode, data, quota, deadline, progress):
        self.mode, self.data, self.quota, self.deadline, self.progress = mode, data, quota, deadline, progress
        self.block = os.urandom(DISK_BLOCK)
        self.counters = dict(mode=mode, written=0, read=0, fsyncs=0, passes=0)
        self.reported_at = 0.0

    def report(self, force=False):
        now = time.time()
        if force or now - self.reported_at >= PROGRESS_EVERY:
            self.reported_at = now
            _atomic.write_json_atomic(self.progress, self.counters)

    def fill(self, sync_each):
        fd = os.open(self.data, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            done = 0
            while done < self.quota and time.time() < self.deadline:
                wrote = os.write(fd, self.block[:next_chunk(len(self.block), self.quota, done)])
                done += wrote
                self.counters['written'] += wrote
                if sync_each:
                    os.fsync(fd)
                    self.counters['fsyncs'] += 1
                self.report()
            if not sync_each:
                os.fdatasync(fd)
        finally:
            os.close(fd)

    def read_back(self):
        fd = os.open(self.data, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while time.time() < self.deadline:
                chunk = os.read(fd, len(self.block))
                if not chunk:
                    break
                self.counters['read'] += len(chunk)
                self.report()
        finally:
            os.close(fd)

    def run(self):
        if self.mode == 'read':
            self.fill(False)
        while time.time() < self.deadline:
            if self.mode == 'read':
                self.read_back()
            else:
                self.fill(self.mode == 'fsync')
            self.counters['passes'] += 1
            self.report(True)
        self.report(True)
        return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    kind, rest = (argv[0], argv[1:]) if argv else (None, [])
    try:
        if kind == 'cpu':
            return run_cpu(**parse_cpu_argv(rest))
        if kind == 'memory':
            return run_memory(**parse_memory_argv(rest))
        if kind == 'disk':
            return DiskWorker(**parse_disk_argv(rest)).run()
        raise UsageError('the first argument must be cpu, memory or disk, got %r' % kind)
    except (UsageError, ValueError) as exc:
        sys.stderr.write('%s: %s\n%s' % (PROGRAM_FILENAME, exc, USAGE))
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
