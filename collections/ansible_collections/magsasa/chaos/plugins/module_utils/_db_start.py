# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Bringing a stopped database server back: the revert step of a database downtime fault.

The guard runs it through a ``command`` revert action (``python3 magsasa_chaos_db_start.py SPEC_JSON``);
this file is copied verbatim into the fault's directory like the guard, so it must stay standalone:
Python 3.8+ standard library only, no Ansible imports, apart from ``_proc``, copied next to it
(:data:`PROGRAM_NEEDS`).

SPEC_JSON holds ``what`` (for messages), ``timeout``, how to tell the server runs (``running_argv``, a
command that exits 0 then, or ``running_in_dir`` {``dir``, ``names``}: a process of one of those names
whose working directory is ``dir``), ``start_argv``, ``start_waits`` (the start command returns once
the server is up, like ``pg_ctl -w`` or ``systemctl start``), ``log`` (a file for a detached server's
output) and ``ready`` {``host``, ``port``}. The program starts the server unless it already runs,
then waits until it accepts connections, retrying the start until its timeout, and fails with a
message that names what is still down.

The confirmation does not disturb the start it confirms: "running" is the pidfile or unit state
(``pg_ctl status``, ``systemctl is-active``) or /proc; "accepting" is a TCP connect that is closed at
once, five times a second at most, which the starting server turns away without slowing its start.
"""

import json
import os
import socket
import subprocess
import sys
import time

try:
    # The copy in a fault's directory imports the copy of _proc installed next to it.
    import magsasa_chaos_proc as _proc
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _proc

PROGRAM_FILENAME = 'magsasa_chaos_db_start.py'
PROGRAM_NEEDS = (_proc,)
POLL_SECONDS = 0.2
RESTART_EVERY = 2.0
LOG_TAIL_BYTES = 600
LOG_TAIL_LINES = 4


class SpecError(Exception):
    """A spec the program cannot run with."""


# ---------------------------------------------------------------- pure parts

def parse_spec(text):
    """The JSON spec, checked for what the program needs."""
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise SpecError('the spec is not JSON: %s' % exc)
    if not isinstance(spec, dict):
        raise SpecError('the spec must be a JSON object, got %s' % type(spec).__name__)
    for key in ('what', 'timeout', 'start_argv'):
        if key not in spec:
            raise SpecError('the spec lacks %r' % key)
    if not spec.get('running_argv') and not spec.get('running_in_dir'):
        raise SpecError('the spec needs running_argv or running_in_dir')
    if not spec['start_argv']:
        raise SpecError('start_argv is empty')
    return spec


def log_tail(data, lines=LOG_TAIL_LINES):
    """The last ``lines`` lines of a log's last bytes, joined with `` | ``."""
    return ' | '.join(data.decode('utf-8', 'replace').strip().splitlines()[-lines:])


def still_down_message(what, timeout, last, tail=''):
    """The failure message: what is down, for how long it was tried, the last state seen, the log's end."""
    return '%s is STILL DOWN after %ss: %s.%s' % (what, timeout, last, ' last log lines: ' + tail if tail else '')


# ---------------------------------------------------------------- side effects

def running_in_dir(wanted_dir, names, proc=_proc.PROC):
    """Whether a live process named one of ``names`` has ``wanted_dir`` as its working directory."""
    wanted = os.path.realpath(wanted_dir)
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, 'comm')) as handle:
                comm = handle.read().strip()
            if comm in names and os.readlink(os.path.join(proc, name, 'cwd')) == wanted \
                    and _proc.is_running(int(name), None, proc):
                return True
        except OSError:
            continue
    return False


class Starter(object):
    def __init__(self, spec):
        self.spec = spec
        self.deadline = time.time() + float(spec['timeout'])

    def server_running(self):
        if self.spec.get('running_argv'):
            return subprocess.call(self.spec['running_argv'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) == 0
        where = self.spec['running_in_dir']
        return running_in_dir(where['dir'], where['names'])

    def accepting(self):
        ready = self.spec.get('ready')
        if not ready:
            return True
        try:
            sock = socket.create_connection((ready['host'], int(ready['port'])), timeout=1)
        except OSError:
            return False
        sock.close()
        return True

    def start(self):
        log = self.spec.get('log')
        out = open(log, 'ab') if log else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(self.spec['start_argv'], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        if self.spec.get('start_waits'):
            try:
                proc.wait(timeout=max(1.0, self.deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass

    def read_log_tail(self):
        log = self.spec.get('log')
        if not log or not os.path.exists(log):
            return ''
        with open(log, 'rb') as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - LOG_TAIL_BYTES))
            return log_tail(handle.read())

    def run(self):
        """0 once the server runs and accepts connections, 1 (with the message) when the timeout passes."""
        last = 'never started'
        started = 0.0
        while True:
            if self.server_running():
                if self.accepting():
                    sys.stdout.write('%s is up\n' % self.spec['what'])
                    return 0
                last = 'running but not accepting connections yet'
            elif time.time() - started >= RESTART_EVERY:
                started = time.time()
                self.start()
                last = 'started, not accepting connections'
                time.sleep(0.3)
                if not self.server_running():
                    last = 'start failed (%s)' % ' '.join(self.spec['start_argv'])
            if time.time() >= self.deadline:
                break
            time.sleep(POLL_SECONDS)
        sys.stdout.write(still_down_message(self.spec['what'], self.spec['timeout'], last, self.read_log_tail()) + '\n')
        return 1


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        sys.stderr.write('usage: %s SPEC_JSON\n' % PROGRAM_FILENAME)
        return 2
    try:
        spec = parse_spec(argv[0])
    except SpecError as exc:
        sys.stderr.write('%s: %s\n' % (PROGRAM_FILENAME, exc))
        return 2
    return Starter(spec).run()


if __name__ == '__main__':
    raise SystemExit(main())
