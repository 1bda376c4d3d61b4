# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The pure parts of the server controls of ``_databases``: the commands they build, how they name the
server, and the errors of a server that cannot be found (on real directories and a real command)."""

import os
import pwd
import subprocess

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils._databases import (
    RESTART_LOG, SERVER_CONTROLS, CommandError, ContainerControl, DatabaseError, DatadirControl, SystemdControl,
    pg_ctl_start_argv, pg_ctl_stop_argv, systemd_stop_argv)

READY = dict(host='127.0.0.1', port=5432)


def params(**overrides):
    base = dict(control='datadir', data_dir=None, systemd_unit=None, container=None, bin_dir=None, run_as=None,
                mode='clean', stop_timeout=60, revert_timeout=90, docker_host='unix:///var/run/docker.sock')
    base.update(overrides)
    return base


def run_command(argv):
    """What the module's run_command returns, from a real process."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def me():
    return pwd.getpwuid(os.geteuid()).pw_name


def test_one_control_per_choice_each_naming_its_option():
    assert sorted(SERVER_CONTROLS) == ['container', 'datadir', 'systemd']
    assert dict((name, control.option) for name, control in SERVER_CONTROLS.items()) == dict(
        datadir='data_dir', systemd='systemd_unit', container='container')


@pytest.mark.parametrize('control, overrides, where', [
    (DatadirControl, dict(data_dir='/srv/pg'), 'data_dir /srv/pg'),
    (SystemdControl, dict(systemd_unit='postgresql@15-main'), 'unit postgresql@15-main'),
    (ContainerControl, dict(container='shop-db'), 'container shop-db'),
])
def test_where_names_the_server_as_the_messages_do(control, overrides, where):
    assert control('postgresql', params(**overrides), READY, run_command).where() == where


@pytest.mark.parametrize('options, tail', [
    ('', []),
    ('-p 5433 -k /tmp', ['-o', '-p 5433 -k /tmp']),
])
def test_pg_ctl_start_waits_logs_and_keeps_the_options(options, tail):
    assert pg_ctl_start_argv('/usr/lib/postgresql/15/bin/pg_ctl', '/srv/pg', 42.7, options) == [
        '/usr/lib/postgresql/15/bin/pg_ctl', 'start', '-D', '/srv/pg', '-w', '-t', '42', '-l',
        os.path.join('/srv/pg', RESTART_LOG)] + tail


def test_pg_ctl_stop_is_a_fast_shutdown_as_the_server_user():
    server = dict(pg_ctl='/bin/pg_ctl', data_dir='/srv/pg', run_as=me())
    assert pg_ctl_stop_argv(server, 7) == ['/bin/pg_ctl', 'stop', '-D', '/srv/pg', '-m', 'fast', '-w', '-t', '7']


@pytest.mark.parametrize('mode, argv, what', [
    ('clean', ['systemctl', 'stop', 'db.service'], 'systemctl stop'),
    ('crash', ['systemctl', 'kill', '--signal=SIGKILL', 'db.service'], 'systemctl kill'),
])
def test_systemd_stop_commands(mode, argv, what):
    assert systemd_stop_argv('db.service', mode) == (argv, what)


def test_a_failed_stop_command_names_the_command_and_its_output():
    control = SystemdControl('postgresql', params(control='systemd', systemd_unit='x'), READY, run_command)
    with pytest.raises(CommandError, match=r"^systemctl stop failed \(sh -c echo no way >&2; exit 3 exited 3\): no way$"):
        control.run(['sh', '-c', 'echo no way >&2; exit 3'], 'systemctl stop')
    assert control.run(['echo', 'ok'], 'echo') == 'ok\n'
    assert issubclass(CommandError, DatabaseError)


def test_datadir_locate_refuses_a_directory_without_postgresql(tmp_path):
    control = DatadirControl('postgresql', params(data_dir=str(tmp_path)), READY, run_command)
    with pytest.raises(DatabaseError, match='is not a PostgreSQL data directory \\(no PG_VERSION\\)'):
        control.locate()
    (tmp_path / 'PG_VERSION').write_text('15\n')
    with pytest.raises(DatabaseError, match='no PostgreSQL server runs in data_dir %s \\(no postmaster.pid\\)'
                       % tmp_path):
        control.locate()
    assert control.server == {}


def test_datadir_locate_finds_no_mariadb_process_in_an_empty_directory(tmp_path):
    control = DatadirControl('mysql', params(data_dir=str(tmp_path)), READY, run_command)
    with pytest.raises(DatabaseError, match='no mariadbd or mysqld process runs with data_dir %s' % tmp_path):
        control.locate()


def test_systemd_locate_refuses_a_unit_that_is_not_active():
    # `false` stands for systemctl answering "inactive" (rc 3 in life; any non-zero counts).
    control = SystemdControl('mysql', params(control='systemd', systemd_unit='nope.service'), READY,
                             lambda argv: run_command(['false']))
    with pytest.raises(DatabaseError, match='^systemd unit nope.service is not active$'):
        control.locate()


def test_systemd_locate_gives_the_start_spec():
    seen = []

    def active(argv):
        seen.append(argv)
        return run_command(['true'])

    control = SystemdControl('postgresql', params(control='systemd', systemd_unit='pg.service'), READY, active)
    server = control.locate()
    assert seen == [['systemctl', 'is-active', '--quiet', 'pg.service']]
    assert server == dict(systemd_unit='pg.service', start=dict(
        what='PostgreSQL (unit pg.service)', running_argv=['systemctl', 'is-active', '--quiet', 'pg.service'],
        start_argv=['systemctl', 'start', 'pg.service'], start_waits=True, ready=READY))
    action = control.revert_action(lambda program, filename: '/state/%s' % filename)
    assert action['type'] == 'command' and action['argv'][1].startswith('/state/')
    assert action['timeout'] == 90 + 15
