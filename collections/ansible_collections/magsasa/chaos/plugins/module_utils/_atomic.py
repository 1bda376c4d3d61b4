# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Replacing a file atomically: a reader sees the old content or the new one, never half of it.

Fault records, lease files, the progress and status files of workers and helpers, and the programs
copied into a state directory are all written this way: to a temporary file in the same directory
(named after the process and thread, so concurrent writers never share one), optionally fsync'ed,
then renamed over the target.

Used by the modules and by the programs that run on their own on a target (the guard, the workers,
the probe sampler): those get this file copied next to them (``magsasa_chaos_atomic.py``) by
:func:`install_program` (``FaultEngine.install_program``), so it must stay standalone: Python 3.8+
standard library only, no Ansible imports.
"""

import json
import os
import threading

PROGRAM_FILENAME = 'magsasa_chaos_atomic.py'
# As open() would create it: the umask decides.
DEFAULT_MODE = 0o666


def temporary_path(path):
    """The temporary file next to ``path`` that this process and thread write before the rename."""
    return '%s.tmp.%d.%d' % (path, os.getpid(), threading.current_thread().ident or 0)


def write_atomic(path, content, mode=DEFAULT_MODE, fsync=False):
    """Replace ``path`` with ``content`` (str or bytes) atomically; ``fsync`` makes it durable before the rename."""
    tmp = temporary_path(path)
    data = content.encode('utf-8') if not isinstance(content, bytes) else content
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def replace_if_changed(path, text, mode=DEFAULT_MODE):
    """Write ``text`` to ``path`` atomically unless the file already holds exactly it; returns whether it
    was written (an installed program or a unit file left alone keeps its mtime, and nothing reloads)."""
    try:
        with open(path, 'r') as handle:
            if handle.read() == text:
                return False
    except (IOError, OSError, UnicodeDecodeError):
        pass
    write_atomic(path, text, mode=mode)
    return True


def write_json_atomic(path, data, mode=DEFAULT_MODE, fsync=False, indent=None):
    """Replace ``path`` with ``data`` as JSON (keys sorted) atomically, see :func:`write_atomic`."""
    write_atomic(path, json.dumps(data, indent=indent, sort_keys=True), mode=mode, fsync=fsync)


def install_program(program_module, filename, directory):
    """Copy a standalone module_utils program into ``directory`` as ``filename``, with the modules it
    imports (its ``PROGRAM_NEEDS``, each under its own ``PROGRAM_FILENAME``) next to it; a file that
    already holds the same source is left alone, a changed one is replaced atomically. Returns its path."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    for needed in getattr(program_module, 'PROGRAM_NEEDS', ()):
        install_program(needed, needed.PROGRAM_FILENAME, directory)
    target = os.path.join(directory, filename)
    import inspect  # here: every guard and worker imports this file, inspect costs each ~15 ms to start
    replace_if_changed(target, inspect.getsource(program_module))
    return target
