# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The connection holder of the database ``connections`` and ``lock`` faults.

Started detached (``python3 magsasa_chaos_db_hold.py SPEC_JSON``) with the password in the
environment variable ``MAGSASA_CHAOS_DB_PASSWORD``, never on the command line. It opens connections
until it has ``connections`` of them or the server refuses one (or, with ``lock``, one connection
that runs that LOCK statement in an open transaction), writes what it holds to the ``status`` file
(``held``, ``error``, ``full_at``), and keeps them until ``expires_at`` or until the guard kills it.

This file is copied verbatim into the fault state directory like the guard, so it must stay
standalone: Python 3.8+ standard library plus the database driver of the engine (psycopg for
PostgreSQL, PyMySQL for MySQL/MariaDB, imported only when connecting), no Ansible imports, apart
from ``_atomic``, copied next to it (:data:`PROGRAM_NEEDS`).
"""

import json
import os
import sys
import time

try:
    # The copy in a fault's directory imports the copy of _atomic installed next to it.
    import magsasa_chaos_atomic as _atomic
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic

PROGRAM_NEEDS = (_atomic,)
PROGRAM_FILENAME = 'magsasa_chaos_db_hold.py'
PASSWORD_ENV = 'MAGSASA_CHAOS_DB_PASSWORD'
CONNECT_TIMEOUT = 5
DEFAULT_CONNECTIONS = 5000
# How long the lock statement waits for the table (PostgreSQL in ms, MariaDB in s).
LOCK_WAIT = dict(postgresql='SET lock_timeout = 10000', mysql='SET SESSION lock_wait_timeout = 10')


# ---------------------------------------------------------------- pure parts

def connect_kwargs(engine, conn, password=None, timeout=CONNECT_TIMEOUT):
    """The keyword arguments of ``psycopg.connect`` (``engine`` postgresql) or ``pymysql.connect``."""
    if engine == 'postgresql':
        kwargs = dict(host=conn['host'], port=conn['port'], user=conn['user'], dbname=conn['database'],
                      connect_timeout=max(1, int(timeout)))
    else:
        kwargs = dict(host=conn['host'], port=conn['port'], user=conn['user'], connect_timeout=timeout)
        if conn.get('database'):
            kwargs['database'] = conn['database']
    if password is not None:
        kwargs['password'] = password
    return kwargs


def one_line(exc):
    """An exception's message on one line (driver messages span several)."""
    return ' '.join(str(exc).split()) or exc.__class__.__name__


def status(held, error, now):
    """What the holder writes once it holds all it could."""
    return dict(held=held, error=error, full_at=now)


# ---------------------------------------------------------------- side effects

def connect(engine, conn, password):
    if engine == 'postgresql':
        import psycopg
        return psycopg.connect(**connect_kwargs(engine, conn, password))
    import pymysql
    return pymysql.connect(**connect_kwargs(engine, conn, password))


def take_lock(spec, password):
    db = connect(spec['engine'], spec['conn'], password)
    if spec['engine'] == 'postgresql':
        db.execute(LOCK_WAIT['postgresql'])
        db.execute(spec['lock'])
    else:
        db.cursor().execute(LOCK_WAIT['mysql'])
        db.cursor().execute(spec['lock'])
    return db


def hold(spec, password):
    """Open what the spec asks for; returns (connections held, the error that stopped it or None)."""
    held = []
    error = None
    if spec.get('lock'):
        try:
            held.append(take_lock(spec, password))
        except Exception as exc:  # pylint: disable=broad-except
            error = one_line(exc)
        return held, error
    limit = spec.get('connections') or DEFAULT_CONNECTIONS
    while len(held) < limit and time.time() < spec['expires_at']:
        try:
            held.append(connect(spec['engine'], spec['conn'], password))
        except Exception as exc:  # pylint: disable=broad-except
            error = one_line(exc)
            break
    return held, error


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        sys.stderr.write('usage: %s SPEC_JSON (password in $%s)\n' % (PROGRAM_FILENAME, PASSWORD_ENV))
        return 2
    spec = json.loads(argv[0])
    password = os.environ.pop(PASSWORD_ENV, None)
    held, error = hold(spec, password)
    _atomic.write_json_atomic(spec['status'], status(len(held), error, time.time()))
    while time.time() < spec['expires_at']:
        time.sleep(min(1.0, max(0.0, spec['expires_at'] - time.time())))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
