# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Database servers for the database fault: find them, stop them, bring them back, ask them.

* Readiness is asked of the server with its own driver (psycopg for PostgreSQL, PyMySQL for
  MySQL/MariaDB), imported guarded so a missing driver is a clear error, not an ImportError.
* Bringing a server back is a ``command`` revert action that runs the program :mod:`_db_start`
  (stdlib only, copied into the fault's directory like the guard) under the module's interpreter:
  it starts the server unless it already runs, then waits until it accepts connections, retrying
  until its timeout and failing with a message that names what is still down.
* The connections and lock faults hold their connections from the program :mod:`_db_hold`.
* The parsers (``postmaster.opts``, ``/proc``) are pure functions of text, unit-tested.
* A :class:`ServerControl` per ``control`` (data directory, systemd unit, container) finds the server
  before the fault, stops it, and gives the revert action that starts it again; the module keeps only
  the fault's glue.
"""

import json
import os
import pwd
import shlex
import signal
import sys
import time
import traceback

from ansible_collections.magsasa.chaos.plugins.module_utils import _db_hold, _db_start, _proc
from ansible_collections.magsasa.chaos.plugins.module_utils._containers import container_state
from ansible_collections.magsasa.chaos.plugins.module_utils._containers import revert_action as container_revert_action

try:
    import psycopg
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

try:
    import pymysql
    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR = None
except ImportError:
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()

ENGINE_DEFAULTS = {
    'postgresql': dict(port=5432, user='postgres', database='postgres', server_names=('postgres',),
                       label='PostgreSQL'),
    'mysql': dict(port=3306, user='root', database=None, server_names=('mariadbd', 'mysqld'),
                  label='MySQL/MariaDB'),
}
RESTART_LOG = 'magsasa_chaos_restart.log'


class DatabaseError(Exception):
    """A failure with a message meant for the user."""


# ---------------------------------------------------------------- pure parsers

def parse_postmaster_opts(text):
    """``postmaster.opts`` (the command line the postmaster runs with) as an argv list."""
    return shlex.split(text.strip())


def postgres_options(argv):
    """The server options of a postmaster argv without its binary and its data directory
    (``pg_ctl start -D`` gives that again), as a string for ``pg_ctl start -o``."""
    options = []
    args = list(argv[1:])
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ('-D', '--pgdata'):
            index += 2
            continue
        if arg.startswith('--pgdata=') or (arg.startswith('-D') and len(arg) > 2):
            index += 1
            continue
        options.append(arg)
        index += 1
    return ' '.join(shlex.quote(o) for o in options)


def postmaster_pid(text):
    """The postmaster's pid: the first line of ``postmaster.pid``."""
    first = text.splitlines()[0].strip() if text.strip() else ''
    if not first.isdigit():
        raise DatabaseError('postmaster.pid does not start with a pid: %r' % first[:40])
    return int(first)


def split_cmdline(raw):
    """``/proc/<pid>/cmdline`` (NUL separated bytes) as a list of str."""
    return [part.decode('utf-8', 'surrogateescape') for part in raw.split(b'\0') if part]


# ---------------------------------------------------------------- /proc

def read_text(path):
    with open(path, 'r') as handle:
        return handle.read()


def process_comm(pid):
    try:
        return read_text('/proc/%d/comm' % pid).strip()
    except (IOError, OSError):
        return None


def process_starttime(pid):
    """The start time of ``pid`` (with the pid, what names the process), or None when it does not run."""
    return _proc.starttime(pid)


def process_alive(pid, starttime=None):
    """Whether ``pid`` runs and, given its ``starttime``, is still the process found before (not a reused pid)."""
    return _proc.is_running(pid, starttime)


def process_cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as handle:
        return split_cmdline(handle.read())


def process_uid(pid):
    for line in read_text('/proc/%d/status' % pid).splitlines():
        if line.startswith('Uid:'):
            return int(line.split()[1])
    raise DatabaseError('no Uid line in /proc/%d/status' % pid)


def all_pids():
    return [int(name) for name in os.listdir('/proc') if name.isdigit()]


def children_of(pid):
    """``(pid, starttime)`` of each live child of ``pid``."""
    found = []
    for candidate in all_pids():
        stat = _proc.read_stat(candidate)
        if stat is not None and stat['ppid'] == pid and not _proc.is_dead_state(stat['state']):
            found.append((candidate, stat['starttime']))
    return found


def stop_server_process(pid, starttime, mode, timeout, poll=0.05):
    """Stop the server process ``pid`` found with ``starttime``: ``clean`` sends it SIGTERM, ``crash`` sends
    SIGKILL to it and all its children at once (like a power cut, nothing written on the way out). Waits
    until they are gone. A pid that no longer names that process is never signalled (DatabaseError)."""
    if not process_alive(pid, starttime):
        raise DatabaseError('server pid %d is no longer the server found before the fault (it exited, or its pid '
                            'now names another process); nothing was stopped' % pid)
    if mode == 'clean':
        victims = [(pid, starttime)]
        os.kill(pid, signal.SIGTERM)
    else:
        victims = [(pid, starttime)] + children_of(pid)
        for victim, start in victims:
            if process_alive(victim, start):
                try:
                    os.kill(victim, signal.SIGKILL)
                except OSError:
                    pass
    deadline = time.time() + timeout
    while any(process_alive(victim, start) for victim, start in victims):
        if time.time() >= deadline:
            raise DatabaseError('server pid %d did not exit within stop_timeout=%ss' % (pid, timeout))
        time.sleep(poll)


def server_in_dir(data_dir, names):
    """The pid of a live process called one of ``names`` whose working directory is ``data_dir``
    (MariaDB and PostgreSQL servers both chdir into their data directory), or None."""
    wanted = os.path.realpath(data_dir)
    for pid in all_pids():
        if process_comm(pid) not in names:
            continue
        try:
            cwd = os.readlink('/proc/%d/cwd' % pid)
        except (IOError, OSError):
            continue
        if cwd == wanted and process_alive(pid):
            return pid
    return None


def user_name(uid):
    return pwd.getpwuid(uid).pw_name


def as_user(argv, user):
    """``argv`` run as ``user``: unchanged when we already are that user, through runuser as root."""
    if pwd.getpwnam(user).pw_uid == os.geteuid():
        return list(argv)
    if os.geteuid() != 0:
        raise DatabaseError('run_as=%s needs root (the module runs as %s)' % (user, user_name(os.geteuid())))
    return ['runuser', '-u', user, '--'] + list(argv)


# ---------------------------------------------------------------- readiness with the driver

def missing_driver(engine):
    """(library name, import traceback) when the driver of ``engine`` is missing, else None."""
    if engine == 'postgresql' and not HAS_PSYCOPG:
        return 'psycopg', PSYCOPG_IMPORT_ERROR
    if engine == 'mysql' and not HAS_PYMYSQL:
        return 'PyMySQL', PYMYSQL_IMPORT_ERROR
    return None


def quote_table(engine, table):
    """``schema.table`` quoted as an identifier of ``engine`` (each part, quotes doubled)."""
    quote = '"' if engine == 'postgresql' else '`'
    return '.'.join(quote + part.replace(quote, quote * 2) + quote for part in table.split('.'))


def probe_sql(engine, table=None):
    """The statements of a readiness query: ``SELECT 1``, or a read of ``table`` that gives up after
    about a second when the table is locked."""
    if table is None:
        return ['SELECT 1']
    limit = 'SET statement_timeout = 1000' if engine == 'postgresql' else 'SET SESSION lock_wait_timeout = 1'
    return [limit, 'SELECT 1 FROM %s LIMIT 1' % quote_table(engine, table)]


def query_once(engine, conn, timeout=2, table=None):
    """Connect and run ``SELECT 1`` (or read ``table``). Returns None when the server answered, else the error text."""
    statements = probe_sql(engine, table)
    try:
        kwargs = _db_hold.connect_kwargs(engine, conn, conn.get('password'), timeout)
        if engine == 'postgresql':
            with psycopg.connect(**kwargs) as db:
                for statement in statements:
                    db.execute(statement)
        else:
            db = pymysql.connect(read_timeout=timeout, write_timeout=timeout, **kwargs)
            try:
                with db.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
            finally:
                db.close()
    except Exception as exc:  # pylint: disable=broad-except
        return _db_hold.one_line(exc)
    return None


def is_auth_error(message):
    text = (message or '').lower()
    return any(marker in text for marker in ('password authentication failed', 'access denied',
                                             'no pg_hba.conf entry', 'role "', 'authentication failed'))


# ---------------------------------------------------------------- the fault's programs

PASSWORD_ENV = _db_hold.PASSWORD_ENV


def lock_statement(engine, table):
    """The statement that locks ``table`` against every other session, reads included."""
    if engine == 'postgresql':
        return 'LOCK TABLE %s IN ACCESS EXCLUSIVE MODE' % quote_table(engine, table)
    return 'LOCK TABLES %s WRITE' % quote_table(engine, table)


def start_action(spec, timeout, install):
    """The ``command`` revert action that brings a server back: the program :mod:`_db_start` with its
    spec. ``install(program_module, filename)`` copies the program where the revert runs it (the
    fault's directory) and returns its path."""
    program = install(_db_start, _db_start.PROGRAM_FILENAME)
    spec = dict(spec, timeout=timeout)
    return dict(type='command', argv=[sys.executable, program, json.dumps(spec, sort_keys=True)],
                timeout=timeout + 15)


def holder_argv(spec, install):
    """The argv of the connection holder: the program :mod:`_db_hold` (installed by ``install`` as for
    :func:`start_action`) with its spec; the password goes in its environment, see :data:`PASSWORD_ENV`."""
    return [sys.executable, install(_db_hold, _db_hold.PROGRAM_FILENAME), json.dumps(spec, sort_keys=True)]


# ---------------------------------------------------------------- the server controls

class CommandError(DatabaseError):
    """A command that stops a server failed; its message is complete as it is."""


class ServerControl(object):
    """How a database server is controlled (the ``control`` option): found before the fault
    (:meth:`locate`, what the plan shows), stopped by the fault (:meth:`stop`) and brought back by the
    revert (:meth:`revert_action`).

    ``engine`` is ``postgresql`` or ``mysql``; ``params`` the module's parameters; ``ready`` the
    ``dict(host, port)`` the start program waits for; ``run_command(argv)`` runs a command and returns
    ``(rc, stdout, stderr)`` (the module's ``run_command``); ``client()`` returns the Docker client."""

    name = None
    option = None  # the option that names the server

    def __init__(self, engine, params, ready, run_command, client=None):
        self.engine = engine
        self.defaults = ENGINE_DEFAULTS[engine]
        self.params = params
        self.ready = ready
        self.run_command = run_command
        self.client = client
        self.server = {}

    def where(self):
        """The server as the messages name it."""
        return '%s %s' % (self.option, self.params[self.option])

    def run(self, argv, what):
        rc, out, err = self.run_command(argv)
        if rc != 0:
            raise CommandError('%s failed (%s exited %d): %s' % (what, ' '.join(argv), rc, (out + err).strip()[-500:]))
        return out

    def locate(self):
        """Find the running server; the facts found (``self.server``), DatabaseError when it is not found."""
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def revert_action(self, install):
        """The revert action that starts the server found by :meth:`locate` again."""
        return start_action(self.server['start'], self.params['revert_timeout'], install)


class DatadirControl(ServerControl):
    """A server found by its data directory: PostgreSQL through ``pg_ctl`` with the options of its
    ``postmaster.opts``, MariaDB by its process, started again with the command line it ran with."""

    name = 'datadir'
    option = 'data_dir'

    def locate(self):
        data_dir = os.path.realpath(self.params['data_dir'])
        what = '%s in data_dir %s' % (self.defaults['label'], data_dir)
        if self.engine == 'postgresql':
            self.server = self._locate_postgresql(data_dir, what)
        else:
            self.server = self._locate_process(data_dir, what)
        return self.server

    def _locate_postgresql(self, data_dir, what):
        if not os.path.exists(os.path.join(data_dir, 'PG_VERSION')):
            raise DatabaseError('data_dir %s is not a PostgreSQL data directory (no PG_VERSION)' % data_dir)
        pid_file = os.path.join(data_dir, 'postmaster.pid')
        if not os.path.exists(pid_file):
            raise DatabaseError('no PostgreSQL server runs in data_dir %s (no postmaster.pid)' % data_dir)
        pid = postmaster_pid(read_text(pid_file))
        starttime = process_starttime(pid)
        if starttime is None:
            raise DatabaseError('postmaster.pid in %s names pid %d, which is not running' % (data_dir, pid))
        argv = parse_postmaster_opts(read_text(os.path.join(data_dir, 'postmaster.opts')))
        user = self.params['run_as'] or user_name(os.stat(data_dir).st_uid)
        pg_ctl = os.path.join(self.params['bin_dir'] or os.path.dirname(argv[0]), 'pg_ctl')
        if not os.access(pg_ctl, os.X_OK):
            raise DatabaseError('no pg_ctl at %s; set bin_dir to the directory of pg_ctl' % pg_ctl)
        start = pg_ctl_start_argv(pg_ctl, data_dir, self.params['revert_timeout'], postgres_options(argv))
        spec = dict(what=what, running_argv=as_user([pg_ctl, 'status', '-D', data_dir], user),
                    start_argv=as_user(start, user), start_waits=True, ready=self.ready)
        return dict(server_pid=pid, server_starttime=starttime, run_as=user, pg_ctl=pg_ctl, server_argv=argv,
                    start=spec, data_dir=data_dir)

    def _locate_process(self, data_dir, what):
        pid = server_in_dir(data_dir, self.defaults['server_names'])
        starttime = None if pid is None else process_starttime(pid)
        if starttime is None:
            raise DatabaseError('no %s process runs with data_dir %s'
                                % (' or '.join(self.defaults['server_names']), data_dir))
        argv = process_cmdline(pid)
        argv[0] = os.readlink('/proc/%d/exe' % pid)
        user = self.params['run_as'] or user_name(process_uid(pid))
        spec = dict(what=what, running_in_dir=dict(dir=data_dir, names=list(self.defaults['server_names'])),
                    start_argv=as_user(argv, user), start_waits=False, log=os.path.join(data_dir, RESTART_LOG),
                    ready=self.ready)
        return dict(server_pid=pid, server_starttime=starttime, run_as=user, server_argv=argv, start=spec,
                    data_dir=data_dir)

    def stop(self):
        if self.engine == 'postgresql' and self.params['mode'] == 'clean':
            self.run(pg_ctl_stop_argv(self.server, self.params['stop_timeout']), 'pg_ctl stop -m fast')
            return
        stop_server_process(self.server['server_pid'], self.server['server_starttime'], self.params['mode'],
                            self.params['stop_timeout'])


class SystemdControl(ServerControl):
    """A server run by the systemd unit ``systemd_unit``."""

    name = 'systemd'
    option = 'systemd_unit'

    def where(self):
        return 'unit %s' % self.params['systemd_unit']

    def locate(self):
        unit = self.params['systemd_unit']
        if self.run_command(['systemctl', 'is-active', '--quiet', unit])[0] != 0:
            raise DatabaseError('systemd unit %s is not active' % unit)
        spec = dict(what='%s (unit %s)' % (self.defaults['label'], unit),
                    running_argv=['systemctl', 'is-active', '--quiet', unit], start_argv=['systemctl', 'start', unit],
                    start_waits=True, ready=self.ready)
        self.server = dict(systemd_unit=unit, start=spec)
        return self.server

    def stop(self):
        argv, what = systemd_stop_argv(self.params['systemd_unit'], self.params['mode'])
        self.run(argv, what)


class ContainerControl(ServerControl):
    """A server in the container ``container``, stopped and started through the Docker API."""

    name = 'container'
    option = 'container'

    def locate(self):
        info = container_state(self.client(), self.params['container'])
        if info is None or not (info.get('State') or {}).get('Running'):
            raise DatabaseError('container %s is not running at docker_host=%s'
                                % (self.params['container'], self.params['docker_host']))
        self.server = dict(container_id=info['Id'], container=info['Name'].lstrip('/'))
        return self.server

    def stop(self):
        if self.params['mode'] == 'clean':
            self.client().api.stop(self.server['container_id'], timeout=self.params['stop_timeout'])
        else:
            self.client().api.kill(self.server['container_id'], signal='SIGKILL')

    def revert_action(self, install):
        return container_revert_action(self.params, 'start', self.server['container_id'], install)


SERVER_CONTROLS = dict((control.name, control) for control in (DatadirControl, SystemdControl, ContainerControl))


def pg_ctl_start_argv(pg_ctl, data_dir, timeout, options):
    """``pg_ctl start`` of ``data_dir``, waiting up to ``timeout`` seconds, its log in :data:`RESTART_LOG`."""
    argv = [pg_ctl, 'start', '-D', data_dir, '-w', '-t', str(int(timeout)), '-l', os.path.join(data_dir, RESTART_LOG)]
    if options:
        argv += ['-o', options]
    return argv


def pg_ctl_stop_argv(server, timeout):
    """``pg_ctl stop -m fast`` of the server found in a data directory, as its user."""
    return as_user([server['pg_ctl'], 'stop', '-D', server['data_dir'], '-m', 'fast', '-w', '-t', str(timeout)],
                   server['run_as'])


def systemd_stop_argv(unit, mode):
    """The systemctl command that stops ``unit`` (``clean``) or kills it at once (``crash``), and its name."""
    if mode == 'clean':
        return ['systemctl', 'stop', unit], 'systemctl stop'
    return ['systemctl', 'kill', '--signal=SIGKILL', unit], 'systemctl kill'
