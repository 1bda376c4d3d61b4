# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Database servers for the database fault: find them, stop them, bring them back, ask them.

* Readiness is asked of the server with its own driver (psycopg for PostgreSQL, PyMySQL for
  MySQL/MariaDB), imported guarded so a missing driver is a clear error, not an ImportError.
* Bringing a server back is a ``command`` revert action that runs :data:`START_CODE` (stdlib
  only) under the module's interpreter: it starts the server unless it already runs, then waits
  until it accepts connections, retrying until its timeout and failing with a message that names
  what is still down.
* The parsers (``postmaster.opts``, ``/proc``) are pure functions of text, unit-tested.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import pwd
import shlex
import sys
import traceback

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


def stat_fields(text):
    """The fields of ``/proc/<pid>/stat`` after the command name: [state, ppid, ...]."""
    return text[text.rfind(')') + 2:].split()


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


def process_alive(pid):
    try:
        fields = stat_fields(read_text('/proc/%d/stat' % pid))
    except (IOError, OSError):
        return False
    return bool(fields) and fields[0] not in ('Z', 'X')


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
    found = []
    for candidate in all_pids():
        try:
            fields = stat_fields(read_text('/proc/%d/stat' % candidate))
        except (IOError, OSError):
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(candidate)
    return found


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
        if engine == 'postgresql':
            kwargs = dict(host=conn['host'], port=conn['port'], user=conn['user'], dbname=conn['database'],
                          connect_timeout=max(1, int(timeout)))
            if conn.get('password') is not None:
                kwargs['password'] = conn['password']
            with psycopg.connect(**kwargs) as db:
                for statement in statements:
                    db.execute(statement)
        else:
            kwargs = dict(host=conn['host'], port=conn['port'], user=conn['user'], connect_timeout=timeout,
                          read_timeout=timeout, write_timeout=timeout)
            if conn.get('password') is not None:
                kwargs['password'] = conn['password']
            if conn.get('database'):
                kwargs['database'] = conn['database']
            db = pymysql.connect(**kwargs)
            try:
                with db.cursor() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
            finally:
                db.close()
    except Exception as exc:  # pylint: disable=broad-except
        return ' '.join(str(exc).split()) or exc.__class__.__name__
    return None


def is_auth_error(message):
    text = (message or '').lower()
    return any(marker in text for marker in ('password authentication failed', 'access denied',
                                             'no pg_hba.conf entry', 'role "', 'authentication failed'))


# ---------------------------------------------------------------- bringing a server back

# Runs in the guard through a ``command`` revert action: ``python -c START_CODE '<json spec>'``.
# spec: what (for messages), timeout, running_argv | running_in_dir {dir, names}, start_argv,
# start_waits (the start command returns once the server is up, like pg_ctl -w or systemctl start),
# log (file for a detached server's output), ready {host, port}.
START_CODE = r'''
import json, os, socket, subprocess, sys, time
spec = json.loads(sys.argv[1])
deadline = time.time() + float(spec["timeout"])

def server_running():
    if spec.get("running_argv"):
        return subprocess.call(spec["running_argv"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) == 0
    wanted = os.path.realpath(spec["running_in_dir"]["dir"])
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % name) as handle:
                comm = handle.read().strip()
            if comm in spec["running_in_dir"]["names"] and os.readlink("/proc/%s/cwd" % name) == wanted:
                with open("/proc/%s/stat" % name) as handle:
                    stat = handle.read()
                if stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X"):
                    return True
        except OSError:
            continue
    return False

def accepting():
    ready = spec.get("ready")
    if not ready:
        return True
    try:
        sock = socket.create_connection((ready["host"], int(ready["port"])), timeout=1)
    except OSError:
        return False
    sock.close()
    return True

def start():
    out = open(spec["log"], "ab") if spec.get("log") else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(spec["start_argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                close_fds=True, start_new_session=True)
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    if spec.get("start_waits"):
        try:
            proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass

# The confirmation does not disturb the start it confirms: "running" is the pidfile or unit state
# (pg_ctl status, systemctl is-active) or /proc; "accepting" is a TCP connect that is closed at once,
# five times a second at most, which the starting server turns away without slowing its start.
last = "never started"
started = 0.0
while True:
    if server_running():
        if accepting():
            print("%s is up" % spec["what"])
            sys.exit(0)
        last = "running but not accepting connections yet"
    elif time.time() - started >= 2.0:
        started = time.time()
        start()
        last = "started, not accepting connections"
        time.sleep(0.3)
        if not server_running():
            last = "start failed (%s)" % " ".join(spec["start_argv"])
    if time.time() >= deadline:
        break
    time.sleep(0.2)
tail = ""
if spec.get("log") and os.path.exists(spec["log"]):
    with open(spec["log"], "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - 600))
        tail = " last log lines: " + " | ".join(handle.read().decode("utf-8", "replace").strip().splitlines()[-4:])
sys.stdout.write("%s is STILL DOWN after %ss: %s.%s\n" % (spec["what"], spec["timeout"], last, tail))
sys.exit(1)
'''


PASSWORD_ENV = 'MAGSASA_CHAOS_DB_PASSWORD'

# The connection holder of the connection exhaustion fault, started detached:
# ``python -c HOLD_CODE '<json spec>'`` with the password in the environment (not on the command line).
# It opens connections until it has ``connections`` of them or the server refuses one (or, with ``lock``,
# one connection that runs that LOCK statement in an open transaction), writes what it holds to
# ``status``, and keeps them until ``expires_at`` or until the guard kills it.
HOLD_CODE = r'''
import json, os, sys, time
spec = json.loads(sys.argv[1])
conn = spec["conn"]
password = os.environ.pop("MAGSASA_CHAOS_DB_PASSWORD", None)

def connect():
    if spec["engine"] == "postgresql":
        import psycopg
        kwargs = dict(host=conn["host"], port=conn["port"], user=conn["user"], dbname=conn["database"], connect_timeout=5)
        if password is not None:
            kwargs["password"] = password
        return psycopg.connect(**kwargs)
    import pymysql
    kwargs = dict(host=conn["host"], port=conn["port"], user=conn["user"], connect_timeout=5)
    if password is not None:
        kwargs["password"] = password
    if conn.get("database"):
        kwargs["database"] = conn["database"]
    return pymysql.connect(**kwargs)

held = []
error = None
if spec.get("lock"):
    try:
        db = connect()
        if spec["engine"] == "postgresql":
            db.execute("SET lock_timeout = 10000")
            db.execute(spec["lock"])
        else:
            db.cursor().execute("SET SESSION lock_wait_timeout = 10")
            db.cursor().execute(spec["lock"])
        held.append(db)
    except Exception as exc:
        error = " ".join(str(exc).split())
else:
    limit = spec.get("connections") or 5000
    while len(held) < limit and time.time() < spec["expires_at"]:
        try:
            held.append(connect())
        except Exception as exc:
            error = " ".join(str(exc).split())
            break
tmp = spec["status"] + ".tmp"
with open(tmp, "w") as handle:
    json.dump(dict(held=len(held), error=error, full_at=time.time()), handle)
os.rename(tmp, spec["status"])
while time.time() < spec["expires_at"]:
    time.sleep(min(1.0, max(0.0, spec["expires_at"] - time.time())))
'''


def lock_statement(engine, table):
    """The statement that locks ``table`` against every other session, reads included."""
    if engine == 'postgresql':
        return 'LOCK TABLE %s IN ACCESS EXCLUSIVE MODE' % quote_table(engine, table)
    return 'LOCK TABLES %s WRITE' % quote_table(engine, table)


def start_action(spec, timeout):
    """The ``command`` revert action that brings a server back (see :data:`START_CODE`)."""
    spec = dict(spec, timeout=timeout)
    return dict(type='command', argv=[sys.executable, '-c', START_CODE, json.dumps(spec, sort_keys=True)],
                timeout=timeout + 15)
