# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The database fault's programs (server start, connection holder) and the TLS container revert."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic, _databases, _db_hold, _db_start, _docker_tls, _fault, _proc

# A stand-in server for the start program: it listens on a port and writes its pid next to it.
LISTENER = ('import os, socket, sys, time\n'
            's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
            's.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)\n'
            'open(sys.argv[2], "w").write(str(os.getpid()))\n'
            'time.sleep(60)\n')


def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """A directory the programs are installed into, as a fault installs them."""
    return str(tmp_path_factory.mktemp('installed'))


def run_program(installed, module, *args, **kwargs):
    """Run the program as a fault installs it (copied, with what it imports next to it)."""
    path = _fault.install_program(module, module.PROGRAM_FILENAME, installed)
    return subprocess.run([sys.executable, path] + list(args), capture_output=True, text=True,
                          timeout=kwargs.get('timeout', 30), check=False)


# ---------------------------------------------------------------- the start program: pure parts

@pytest.mark.parametrize('spec, message', [
    ('[1]', 'must be a JSON object, got list'),
    ('{', 'not JSON'),
    (json.dumps(dict(timeout=5, start_argv=['x'], running_argv=['y'])), "lacks 'what'"),
    (json.dumps(dict(what='db', timeout=5, start_argv=['x'])), 'needs running_argv or running_in_dir'),
    (json.dumps(dict(what='db', timeout=5, start_argv=[], running_argv=['y'])), 'start_argv is empty'),
])
def test_start_spec_refused(spec, message):
    with pytest.raises(_db_start.SpecError, match=message):
        _db_start.parse_spec(spec)


@pytest.mark.parametrize('data, tail', [
    (b'one\ntwo\nthree\nfour\nfive\n', 'two | three | four | five'),
    (b'\n only \n', 'only'),
    (b'bad \xff byte', 'bad \ufffd byte'),
    (b'', ''),
])
def test_log_tail(data, tail):
    assert _db_start.log_tail(data) == tail


@pytest.mark.parametrize('tail, message', [
    ('', 'PostgreSQL is STILL DOWN after 30s: never started.'),
    ('a | b', 'PostgreSQL is STILL DOWN after 30s: never started. last log lines: a | b'),
])
def test_still_down_message(tail, message):
    assert _db_start.still_down_message('PostgreSQL', 30, 'never started', tail) == message


def test_running_in_dir_finds_a_process_by_name_and_working_directory(tmp_path):
    other = tmp_path / 'other'
    other.mkdir()
    proc = subprocess.Popen(['sleep', '30'], cwd=str(tmp_path))
    try:
        assert support_wait(lambda: _db_start.running_in_dir(str(tmp_path), ['sleep']))
        assert not _db_start.running_in_dir(str(tmp_path), ['postgres'])
        assert not _db_start.running_in_dir(str(other), ['sleep'])
    finally:
        proc.kill()
        proc.wait()
    assert not _db_start.running_in_dir(str(tmp_path), ['sleep'])


def support_wait(check, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# ---------------------------------------------------------------- the start program, run for real

def test_start_program_starts_a_stopped_server_and_waits_until_it_accepts(tmp_path, installed):
    port, pidfile = free_port(), tmp_path / 'server.pid'
    spec = dict(what='the stand-in server', timeout=20, start_waits=False, log=str(tmp_path / 'server.log'),
                running_argv=['sh', '-c', 'test -s "$0" && kill -0 "$(cat "$0")"', str(pidfile)],
                start_argv=[sys.executable, '-c', LISTENER, str(port), str(pidfile)],
                ready=dict(host='127.0.0.1', port=port))
    try:
        out = run_program(installed, _db_start, json.dumps(spec))
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout == 'the stand-in server is up\n'
        pid = int(pidfile.read_text())
        # It is detached (its own session) and outlives the program that started it.
        assert _proc.is_running(pid) and os.getsid(pid) == pid
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
        # Run again while the server is up: it starts nothing.
        again = run_program(installed, _db_start, json.dumps(spec))
        assert again.returncode == 0 and int(pidfile.read_text()) == pid
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_start_program_names_what_is_still_down(tmp_path, installed):
    log = tmp_path / 'server.log'
    spec = dict(what='MariaDB in data_dir /nowhere', timeout=1, start_waits=True, log=str(log),
                running_in_dir=dict(dir=str(tmp_path), names=['magsasa-none']),
                start_argv=['sh', '-c', 'echo first; echo "cannot open /nowhere"; exit 1'],
                ready=dict(host='127.0.0.1', port=free_port()))
    out = run_program(installed, _db_start, json.dumps(spec))
    assert out.returncode == 1
    assert out.stdout.startswith('MariaDB in data_dir /nowhere is STILL DOWN after 1s: start failed (sh -c ')
    assert out.stdout.rstrip().endswith('last log lines: first | cannot open /nowhere')


@pytest.mark.parametrize('args', [[], ['{}', 'extra'], ['{}']])
def test_start_program_refuses_bad_arguments(args, installed):
    out = run_program(installed, _db_start, *args)
    assert out.returncode == 2 and _db_start.PROGRAM_FILENAME in out.stderr


def test_start_action_names_the_program_and_its_spec(tmp_path):
    installed = []

    def install(program, filename):
        installed.append(program)
        return str(tmp_path / filename)

    action = _databases.start_action(dict(what='db', running_argv=['true'], start_argv=['true']), 30, install)
    assert installed == [_db_start]
    assert action['type'] == 'command' and action['timeout'] == 45
    assert action['argv'][:2] == [sys.executable, str(tmp_path / 'magsasa_chaos_db_start.py')]
    assert len(action['argv']) == 3 and _db_start.parse_spec(action['argv'][2])['timeout'] == 30


# ---------------------------------------------------------------- the connection holder

CONN = dict(host='db.example', port=5433, user='app', database='shop')


@pytest.mark.parametrize('engine, conn, password, timeout, expected', [
    ('postgresql', CONN, None, 5, dict(host='db.example', port=5433, user='app', dbname='shop', connect_timeout=5)),
    ('postgresql', CONN, 's3cret', 0.5,
     dict(host='db.example', port=5433, user='app', dbname='shop', connect_timeout=1, password='s3cret')),
    ('mysql', CONN, None, 2, dict(host='db.example', port=5433, user='app', database='shop', connect_timeout=2)),
    ('mysql', dict(CONN, database=None), 'pw', 5,
     dict(host='db.example', port=5433, user='app', connect_timeout=5, password='pw')),
])
def test_connect_kwargs(engine, conn, password, timeout, expected):
    assert _db_hold.connect_kwargs(engine, conn, password, timeout) == expected


@pytest.mark.parametrize('exc, line', [
    (ValueError('connection refused\n\tIs the server running?'), 'connection refused Is the server running?'),
    (ValueError(''), 'ValueError'),
])
def test_one_line(exc, line):
    assert _db_hold.one_line(exc) == line


def test_holder_status_is_written_whole(tmp_path):
    target = tmp_path / 'f.holder-status'
    _atomic.write_json_atomic(str(target), _db_hold.status(3, 'too many clients', 12.5))
    assert json.loads(target.read_text()) == dict(held=3, error='too many clients', full_at=12.5)
    assert os.listdir(str(tmp_path)) == ['f.holder-status']


def test_holder_reports_a_refused_connection_and_keeps_the_password_off_its_command_line(tmp_path, installed):
    status = tmp_path / 'status'
    spec = dict(engine='postgresql', conn=dict(host='127.0.0.1', port=free_port(), user='u', database='d'),
                connections=3, expires_at=time.time() + 1.0, status=str(status))
    argv = _databases.holder_argv(spec, lambda program, filename: _fault.install_program(program, filename, installed))
    assert argv[1] == os.path.join(installed, 'magsasa_chaos_db_hold.py') and 'password' not in argv[2]
    env = dict(os.environ, **{_db_hold.PASSWORD_ENV: 'not-on-the-command-line'})
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    held = json.loads(status.read_text())
    assert held['held'] == 0 and held['error'] and 'refused' in held['error'].lower()


# ---------------------------------------------------------------- the TLS container revert

TLS_SPEC = dict(docker_host='tcp://10.0.0.1:2376', validate_certs=True, ca_path='/ca.pem', client_cert='/c.pem',
                client_key='/k.pem', timeout=20, op='unpause', container='abc')


@pytest.mark.parametrize('change, message', [
    (dict(op='restart'), "op must be one of start, unpause, got 'restart'"),
    (dict(container=''), "lacks 'container'"),
    (dict(docker_host=None), "lacks 'docker_host'"),
])
def test_tls_spec_refused(change, message):
    with pytest.raises(_docker_tls.SpecError, match=message):
        _docker_tls.parse_spec(json.dumps(dict(TLS_SPEC, **change)))


@pytest.mark.parametrize('change, options, pinned', [
    ({}, dict(ca_cert='/ca.pem', verify=True, client_cert=('/c.pem', '/k.pem')), True),
    (dict(client_cert=None, validate_certs=False), dict(ca_cert='/ca.pem', verify=False, client_cert=None), False),
    (dict(ca_path=None), dict(ca_cert=None, verify=True, client_cert=('/c.pem', '/k.pem')), False),
])
def test_tls_options(change, options, pinned):
    spec = dict(TLS_SPEC, **change)
    assert _docker_tls.tls_options(spec) == options
    assert _docker_tls.pins_ca(spec) is pinned


@pytest.mark.parametrize('op, message, done', [
    ('unpause', '409 Conflict: Container abc is not paused', True),
    ('start', '409 Conflict: Container abc is not paused', False),
    ('unpause', '404 Not Found: No such container', False),
])
def test_already_done(op, message, done):
    assert _docker_tls.already_done(op, message) is done


@pytest.mark.parametrize('args', [[], ['{"op": "start"}'], ['not json']])
def test_tls_program_refuses_bad_arguments(args, installed):
    out = run_program(installed, _docker_tls, *args)
    assert out.returncode == 2 and _docker_tls.PROGRAM_FILENAME in out.stderr
