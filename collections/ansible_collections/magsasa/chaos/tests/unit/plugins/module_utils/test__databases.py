# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils._databases import (
    DatabaseError, is_auth_error, lock_statement, parse_postmaster_opts, postgres_options, postmaster_pid, probe_sql,
    quote_table, split_cmdline)
from ansible_collections.magsasa.chaos.plugins.module_utils._proc import stat_fields


def test_postmaster_opts_round_trip_to_pg_ctl_options():
    text = '/usr/lib/postgresql/15/bin/postgres "-D" "/srv/pg data" "-p" "5433" "-c" "listen_addresses=127.0.0.1"\n'
    argv = parse_postmaster_opts(text)
    assert argv == ['/usr/lib/postgresql/15/bin/postgres', '-D', '/srv/pg data', '-p', '5433', '-c',
                    'listen_addresses=127.0.0.1']
    assert postgres_options(argv) == '-p 5433 -c listen_addresses=127.0.0.1'


@pytest.mark.parametrize('argv, expected', [
    (['postgres', '-D/x', '-k', '/tmp/a b'], "-k '/tmp/a b'"),
    (['postgres', '--pgdata=/x', '-p', '1'], '-p 1'),
    (['postgres', '--pgdata', '/x'], ''),
])
def test_postgres_options_drop_the_data_dir(argv, expected):
    assert postgres_options(argv) == expected


def test_postmaster_pid_is_the_first_line():
    assert postmaster_pid('4242\n/srv/pg\n1700000000\n5432\n') == 4242
    with pytest.raises(DatabaseError):
        postmaster_pid('garbage\n')


def test_proc_parsers():
    assert stat_fields('123 (post gres: (x)) S 1 123 123 0')[:2] == ['S', '1']
    assert split_cmdline(b'/usr/sbin/mariadbd\0--datadir=/d\0--port=1\0') == ['/usr/sbin/mariadbd', '--datadir=/d', '--port=1']


@pytest.mark.parametrize('message, auth', [
    ('connection failed: FATAL:  password authentication failed for user "chaos"', True),
    ("(1045, \"Access denied for user 'chaos'@'127.0.0.1' (using password: YES)\")", True),
    ('connection refused', False),
])
def test_is_auth_error(message, auth):
    assert is_auth_error(message) is auth


@pytest.mark.parametrize('engine, table, quoted', [
    ('postgresql', 'writes', '"writes"'), ('postgresql', 'app.or"ders', '"app"."or""ders"'),
    ('mysql', 'shop.orders', '`shop`.`orders`'), ('mysql', 'we`ird', '`we``ird`'),
])
def test_quote_table(engine, table, quoted):
    assert quote_table(engine, table) == quoted


def test_lock_and_probe_statements():
    assert lock_statement('postgresql', 'writes') == 'LOCK TABLE "writes" IN ACCESS EXCLUSIVE MODE'
    assert lock_statement('mysql', 'writes') == 'LOCK TABLES `writes` WRITE'
    assert probe_sql('postgresql') == ['SELECT 1']
    assert probe_sql('mysql', 'writes') == ['SET SESSION lock_wait_timeout = 1', 'SELECT 1 FROM `writes` LIMIT 1']
