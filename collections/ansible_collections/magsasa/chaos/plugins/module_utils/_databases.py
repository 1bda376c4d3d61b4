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
