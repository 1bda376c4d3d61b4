# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Processes as /proc shows them: identity by pid and start time, ``stat`` parsing, signal names.

A pid alone does not name a process: once it exits, the kernel hands the number to the next one.
So every process this collection starts, stops or watches is remembered as ``(pid, starttime)``,
the start time being field 22 of ``/proc/<pid>/stat`` (clock ticks since boot), and a later look
(a kill, a liveness check) asks for both.

Used by the modules and by the programs that run on their own on a target (the guard): those get
this file copied next to them (``magsasa_chaos_proc.py``) by ``FaultEngine.install_program``, so
it must stay standalone: Python 3.8+ standard library only, no Ansible imports. The parsers are
pure functions of text, unit-tested.
"""

import os
import signal

PROGRAM_FILENAME = 'magsasa_chaos_proc.py'
PROC = '/proc'
DEAD_STATES = ('Z', 'X')


# ---------------------------------------------------------------- pure parsers

def stat_fields(text):
    """The fields of ``/proc/<pid>/stat`` (str or bytes) after the command name, as str:
    ``[state, ppid, pgrp, session, ...]``. The name may hold spaces and ``)``: split after the last one."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return text[text.rfind(')') + 2:].split()


def parse_stat(text):
    """``/proc/<pid>/stat`` -> dict(state, ppid, pgrp, session, starttime); ValueError when it is not one."""
    fields = stat_fields(text)
    if len(fields) < 20:
        raise ValueError('not a /proc/<pid>/stat line: %r' % (text[:80],))
    return dict(state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]), session=int(fields[3]),
                starttime=fields[19])


def is_dead_state(state):
    """A zombie or a dead process: it runs no more, whatever its pid still says."""
    return state in DEAD_STATES


def signal_number(value):
    """``'SIGKILL'``, ``'KILL'``, ``'kill'``, ``'9'`` or ``9`` -> 9; ValueError for anything else."""
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if number in set(int(s) for s in signal.Signals):
            return number
        raise ValueError('no signal numbered %s' % value)
    name = text.upper()
    if not name.startswith('SIG'):
        name = 'SIG' + name
    if name in signal.Signals.__members__:
        return int(signal.Signals[name])
    raise ValueError('no signal named %s' % value)


# ---------------------------------------------------------------- /proc

def read_stat(pid, proc=PROC):
    """The parsed ``stat`` of ``pid`` (see :func:`parse_stat`), or None when there is no such process."""
    try:
        with open(os.path.join(proc, str(int(pid)), 'stat'), 'rb') as handle:
            return parse_stat(handle.read())
    except (IOError, OSError, ValueError):
        return None


def starttime(pid, proc=PROC):
    """The start time of ``pid`` (clock ticks since boot, as a string), or None when it is gone or a zombie."""
    stat = read_stat(pid, proc)
    if stat is None or is_dead_state(stat['state']):
        return None
    return stat['starttime']


def is_running(pid, start=None, proc=PROC):
    """Whether ``pid`` runs (not a zombie) and, given ``start``, is still the process that started then."""
    current = starttime(pid, proc)
    if current is None:
        return False
    return start is None or str(start) == current


def parent(pid, proc=PROC):
    """The parent pid of ``pid``, or None when it is gone."""
    stat = read_stat(pid, proc)
    return None if stat is None else stat['ppid']
