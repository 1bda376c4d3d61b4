# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Finding processes for chaos_process: the process table from /proc, selectors, the
processes that must never be hit (PID 1, the module and its ancestors).
The random pick of some of the matches is ``_targeting.pick``.

The parsing and selection functions take plain data so they are unit-tested without processes.
"""

import os
import re

from ansible_collections.magsasa.chaos.plugins.module_utils import _proc
from ansible_collections.magsasa.chaos.plugins.module_utils._guard import GUARD_FILENAME

PROC = _proc.PROC
# One parser of signal names for every module (``'SIGKILL'``, ``'KILL'``, ``'9'`` -> 9).
signal_number = _proc.signal_number


def read_process(pid):
    """One process as a dict (pid, ppid, name, cmdline, state, starttime), or None if gone."""
    base = os.path.join(PROC, str(pid))
    try:
        with open(os.path.join(base, 'stat'), 'rb') as handle:
            stat = _proc.parse_stat(handle.read())
        with open(os.path.join(base, 'comm'), 'r') as handle:
            name = handle.read().rstrip('\n')
        with open(os.path.join(base, 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError, ValueError, IndexError):
        return None
    cmdline = [part.decode('utf-8', 'replace') for part in raw.split(b'\0') if part]
    return dict(pid=int(pid), ppid=stat['ppid'], name=name, cmdline=cmdline, state=stat['state'],
                starttime=stat['starttime'])


def is_running(pid, starttime):
    """Whether the process that had ``starttime`` still runs (a zombie is dead, a reused pid is another)."""
    return _proc.is_running(pid, starttime, PROC)


def is_fault_guard(proc):
    """Whether the process is the guard of a fault or a state dir's watchdog (``magsasa_chaos_guard.py
    watch|watchdog ...``): killing it would take away what reverts faults at their deadline."""
    cmdline = proc['cmdline']
    return bool({'watch', 'watchdog'} & set(cmdline)) and any(os.path.basename(part) == GUARD_FILENAME
                                                              for part in cmdline)


def process_table():
    """Every live user-space process (kernel threads, with no command line, and zombies left out)."""
    table = []
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        proc = read_process(int(entry))
        if proc is None or not proc['cmdline'] or proc['state'] in ('Z', 'X'):
            continue
        table.append(proc)
    return table


def children(pid):
    """The live processes whose parent is ``pid``, read from ``/proc/<pid>/task/*/children``: a few
    small files instead of the whole process table. None when the kernel has no such file (then the
    caller scans :func:`process_table`)."""
    found = set()
    seen_file = False
    try:
        tasks = os.listdir(os.path.join(PROC, str(pid), 'task'))
    except (IOError, OSError):
        return []
    for tid in tasks:
        try:
            with open(os.path.join(PROC, str(pid), 'task', tid, 'children'), 'r') as handle:
                text = handle.read()
        except (IOError, OSError):
            continue
        seen_file = True
        found.update(int(child) for child in text.split())
    if not seen_file:
        return None
    procs = [read_process(child) for child in sorted(found)]
    return [p for p in procs if p is not None and p['cmdline'] and p['state'] not in ('Z', 'X')]


def successors(candidates, killed, before):
    """The processes among ``candidates`` that took the place of a ``killed`` one: not one of
    ``before`` (``(pid, starttime)`` pairs, so a reused pid counts as new), started by the same
    parent, with the same command line. A supervisor (supervisord, systemd, a shell loop) respawns
    a service that way; matching the command line skips its other programs, and a child caught
    between fork and exec (still the supervisor's command line) is not taken for the service."""
    wanted = set((k['ppid'], tuple(k['cmdline'])) for k in killed)
    return [p for p in candidates
            if (p['pid'], p['starttime']) not in before and (p['ppid'], tuple(p['cmdline'])) in wanted]


def match_name(table, name):
    """Processes whose short name (comm) or program basename is exactly ``name``."""
    return [p for p in table
            if p['name'] == name or os.path.basename(p['cmdline'][0]) == name]


def match_cmdline(table, pattern):
    """Processes whose command line (arguments joined by spaces) matches the regex ``pattern``."""
    regex = re.compile(pattern)
    return [p for p in table if regex.search(' '.join(p['cmdline']))]


def ancestors(pid, table_by_pid=None):
    """``pid`` and every process above it, up to PID 1."""
    chain = []
    seen = set()
    current = pid
    while current and current not in seen:
        seen.add(current)
        chain.append(current)
        if table_by_pid is not None and current in table_by_pid:
            current = table_by_pid[current]['ppid']
        else:
            proc = read_process(current)
            current = proc['ppid'] if proc else 0
    return chain


def protected_pids(own_pid):
    """PIDs never to signal: PID 1, this module's process and its ancestors (the Ansible worker,
    the shell and, on a local connection, ansible-playbook itself)."""
    return set([1]) | set(ancestors(own_pid))


def parse_pidfile(text):
    """The pid in a pidfile's first line; ValueError when it is not a positive integer."""
    first = text.strip().split('\n')[0].strip()
    pid = int(first)
    if pid <= 0:
        raise ValueError(first)
    return pid


def parse_systemctl_show(text):
    """``systemctl show -p A -p B`` output -> {A: value, B: value}."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_supervisor_pid(text):
    """``supervisorctl pid <program>`` output -> the pid, or None when not running / unknown."""
    stripped = text.strip()
    if stripped.isdigit() and int(stripped) > 0:
        return int(stripped)
    return None


def read_cgroup_pids(control_group, root='/sys/fs/cgroup'):
    """The pids in a cgroup (v2 unified, or the v1 systemd hierarchy)."""
    for base in (root, os.path.join(root, 'systemd')):
        path = os.path.join(base, control_group.lstrip('/'), 'cgroup.procs')
        try:
            with open(path, 'r') as handle:
                return [int(line) for line in handle.read().split() if line.isdigit()]
        except (IOError, OSError):
            continue
    return []
