"""chaos_db against real PostgreSQL 15 and MariaDB servers that each test starts in its own
temporary data dir, on a free port on 127.0.0.1, as the servers' own users.

A client writes one row every 50 ms through the whole fault: writes must fail while the server is
down, succeed again after, and every row committed before the fault must still be there.
Each test destroys its server and data dir in ``finally`` and checks that no server process of it
remains and no fault of it is left active.
"""

import json
import os
import socket
import threading
import time

import pytest

import support_containers_db as support
from ansible_collections.magsasa.chaos.plugins.module_utils import _guard
from ansible_collections.magsasa.chaos.plugins.module_utils._databases import postmaster_pid

pytestmark = pytest.mark.timeout(150)


# ---------------------------------------------------------------- real servers

@pytest.fixture
def postgres():
    support.require_postgres()
    server = support.PostgresServer()
    yield from _serve(server)


@pytest.fixture
def postgres_in_container():
    support.require_postgres()
    support.require_dockerd()
    support.ensure_busybox_image()
    server = support.PostgresContainerServer()
    yield from _serve(server)
    assert server.container not in support.docker('ps', '-a', '--format', '{{.Names}}').stdout.split()


@pytest.fixture
def mariadb_in_container():
    support.require_mariadb()
    support.require_dockerd()
    support.ensure_busybox_image()
    server = support.MariaContainerServer()
    yield from _serve(server)
    assert server.container not in support.docker('ps', '-a', '--format', '{{.Names}}').stdout.split()


@pytest.fixture
def mariadb():
    support.require_mariadb()
    server = support.MariaServer()
    yield from _serve(server)


def _serve(server):
    state_dir = os.path.join(server.base, 'state')
    server.state_dir = state_dir
    try:
        server.start()
        yield server
        assert support.wait_for(lambda: not _guard.list_records(state_dir), 30), 'a fault is still active'
        assert server.query_ok(), 'the server is not up at the end of the test'
    finally:
        for record in _guard.list_records(state_dir):
            _guard.revert_fault(state_dir, record['fault_id'], 'test-cleanup', timeout=15)
        server.destroy()
        assert support.processes_in(server.base) == [], 'server processes remain'
        assert not os.path.exists(server.base)


def server_for(request, engine):
    return request.getfixturevalue('postgres' if engine == 'postgresql' else 'mariadb')


def check_downtime(server, writer, result, duration):
    """The world agrees with the module: down for about ``duration``, writes failed inside, none lost."""
    stopped_at = result['details']['stopped_at']
    ready_at = result['effect']['ready_at']
    assert result['effect']['down_confirmed'] is True
    assert result['downtime_seconds'] == pytest.approx(ready_at - stopped_at, abs=0.01)
    assert duration - 0.5 <= result['downtime_seconds'] < duration + 15
    inside = [a for a in writer.attempts if stopped_at + 0.5 <= a[0] <= stopped_at + duration - 0.5]
    assert len(inside) > 5 and not any(ok for _, _, ok in inside), 'writes succeeded while the server was down'
    before = set(i for at, i, ok in writer.attempts if ok and at < stopped_at)
    assert len(before) > 3
    assert writer.successes_after(ready_at + 0.5), 'no write succeeded after the server came back'
    missing = writer.committed() - server.ids()
    assert not missing, 'rows committed but lost: %s' % sorted(missing)


def test_postgresql_10s_crash_through_playbook(postgres, tmp_path):
    out = tmp_path / 'result.json'
    with support.Writer(postgres) as writer:
        time.sleep(0.5)
        run = support.run_playbook(str(tmp_path), '''\
            - name: PostgreSQL down for 10 seconds, crashed
              magsasa.chaos.chaos_db:
                engine: postgresql
                control: datadir
                data_dir: %s
                mode: crash
                duration: 10
                wait: true
                state_dir: %s
                login_host: 127.0.0.1
                login_port: %d
                login_user: chaos
                login_password: %s
                login_db: chaosdb
              register: chaos_db_result
            - name: Keep the result
              ansible.builtin.copy:
                content: "{{ chaos_db_result | to_json }}"
                dest: %s
                mode: "0600"
            ''' % (postgres.data_dir, postgres.state_dir, postgres.port, support.DB_PASSWORD, out))
        time.sleep(1.0)
    assert run.returncode == 0, run.stdout + run.stderr
    text = out.read_text()
    assert support.DB_PASSWORD not in text and support.DB_PASSWORD not in run.stdout
    result = json.loads(text)
    assert result['plan']['mode'] == 'crash'
    with open(os.path.join(postgres.data_dir, 'postmaster.pid')) as handle:
        assert postmaster_pid(handle.read()) != result['details']['server_pid'], 'the same postmaster still runs'
    check_downtime(postgres, writer, result, 10)
    history = support.history(postgres.state_dir, result['fault_id'])
    assert history['reverted_by'] == 'guard:deadline' and history['revert_ok'] is True


@pytest.mark.parametrize('engine, mode', [('postgresql', 'clean'), ('mysql', 'clean'), ('mysql', 'crash')])
def test_downtime_then_recovery_without_losing_rows(request, engine, mode):
    server = server_for(request, engine)
    with support.Writer(server) as writer:
        time.sleep(0.5)
        result = support.run_module('chaos_db', server.module_args(mode=mode, duration=4, wait=True, state_dir=server.state_dir))
        time.sleep(1.0)
    assert result.get('failed') is not True, result
    assert result['plan']['mode'] == mode
    check_downtime(server, writer, result, 4)
    assert result['effect']['revert_errors'] == []


def test_absent_ends_the_downtime_early_and_reports_it(postgres):
    result = support.run_module('chaos_db', postgres.module_args(duration=60, state_dir=postgres.state_dir))
    assert result.get('failed') is not True, result
    assert result['effect']['down_confirmed'] is True and result['downtime_seconds'] is None
    assert not postgres.query_ok()
    time.sleep(1.0)
    ended = support.run_module('chaos_db', postgres.module_args(state='absent', fault_id=result['fault_id'],
                                                                state_dir=postgres.state_dir))
    assert ended.get('failed') is not True, ended
    assert ended['reverted'] == [result['fault_id']]
    assert 1.0 <= ended['downtime_seconds'] < 30
    assert postgres.query_ok()
    history = support.history(postgres.state_dir, result['fault_id'])
    assert history['reverted_by'] == 'module:absent' and history['revert_ok'] is True


@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_wrong_credentials_fail_before_anything_is_stopped(request, engine):
    server = server_for(request, engine)
    pid_before = server.main_pid()
    result = support.run_module('chaos_db', server.module_args(login_password='not-the-password', duration=5,
                                                               state_dir=server.state_dir))
    assert result['failed'] is True
    assert 'wrong database credentials: login_user=chaos' in result['msg']
    assert 'not-the-password' not in json.dumps(result)
    assert server.query_ok() and server.main_pid() == pid_before
    assert pid_before in support.processes_in(server.data_dir)
    assert _guard.list_records(server.state_dir) == []


def test_database_that_does_not_come_back_fails_loudly_then_is_restored(postgres):
    """Something else takes the port while the server is down: the guard keeps trying until revert_timeout,
    then the task fails naming what is still down; once the port is free, state=absent brings it back."""
    blocker = {}

    def take_port():
        if not support.wait_for(lambda: not postgres.query_ok(), 20, 0.05):
            return
        deadline = time.time() + 10
        while time.time() < deadline and 'sock' not in blocker:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(('127.0.0.1', postgres.port))
            except OSError:  # the server is still shutting down and listening
                sock.close()
                time.sleep(0.02)
                continue
            sock.listen(1)
            blocker['sock'] = sock

    thread = threading.Thread(target=take_port)
    thread.start()
    try:
        result = support.run_module('chaos_db', postgres.module_args(duration=2, wait=True, revert_timeout=4,
                                                                     state_dir=postgres.state_dir))
        thread.join(20)
        assert 'sock' in blocker, 'the test could not take the port'
        assert result['failed'] is True
        assert 'PostgreSQL at 127.0.0.1:%d' % postgres.port in result['msg'] and 'STILL DOWN' in result['msg']
        assert 'the guard reported' in result['msg']
        (record,) = _guard.list_records(postgres.state_dir)
        assert record['revert_failures'], 'the failed revert must stay on record for a retry'
    finally:
        thread.join(20)
        if 'sock' in blocker:
            blocker['sock'].close()
    ended = support.run_module('chaos_db', postgres.module_args(state='absent', fault_id=result['fault_id'],
                                                                state_dir=postgres.state_dir))
    assert ended.get('failed') is not True, ended
    assert ended['downtime_seconds'] > 2
    assert postgres.query_ok()


@pytest.mark.parametrize('engine, refusal', [('postgresql', 'too many clients'), ('mysql', 'Too many connections')])
def test_connection_exhaustion_refuses_clients_until_the_guard_releases(request, engine, refusal):
    server = server_for(request, engine)
    result = support.run_module('chaos_db', server.module_args(action='connections', duration=5,
                                                                 state_dir=server.state_dir))
    assert result.get('failed') is not True, result
    details = result['details']
    assert 20 <= details['held_connections'] <= 31  # max_connections=30 (+1 for a MariaDB superuser)
    assert refusal in details['refused_with']
    assert result['effect']['down_confirmed'] is True
    with pytest.raises(Exception, match=refusal):
        server.connect(timeout=2).close()
    holder = details['holder_pid']
    assert _guard.process_alive(holder)
    assert support.wait_for(lambda: server.query_ok(), result['expires_at'] - time.time() + 5), 'still refused after the deadline'
    assert time.time() >= result['expires_at'] - 0.5
    assert support.wait_for(lambda: not _guard.process_alive(holder), 5), 'the connection holder outlived the fault'
    sessions = ("SELECT count(*) FROM pg_stat_activity WHERE usename = 'chaos'" if engine == 'postgresql'
                else "SELECT count(*) FROM information_schema.processlist WHERE user = 'chaos'")
    assert server.scalar(sessions) <= 2


@pytest.mark.parametrize('engine, mode', [('postgresql', 'clean'), ('postgresql', 'crash'), ('mysql', 'crash')])
def test_database_in_a_container_down_and_back(request, engine, mode):
    server = request.getfixturevalue('postgres_in_container' if engine == 'postgresql' else 'mariadb_in_container')
    with support.Writer(server) as writer:
        time.sleep(0.5)
        result = support.run_module('chaos_db', server.module_args(mode=mode, duration=4, wait=True,
                                                                   state_dir=server.state_dir))
        time.sleep(1.0)
    assert result.get('failed') is not True, result
    assert result['plan']['container'] == server.container
    check_downtime(server, writer, result, 4)
    state = support.inspect(server.container)['State']
    assert state['Running'] and support.parse_docker_time(state['StartedAt']) >= result['expires_at'] - 0.5


def test_unrenewed_lease_brings_the_database_back_early(postgres):
    result = support.run_module('chaos_db', postgres.module_args(mode='crash', duration=60, lease=3,
                                                                 state_dir=postgres.state_dir))
    assert result.get('failed') is not True, result
    assert result['lease_expires_at'] < result['expires_at']
    assert not postgres.query_ok()
    assert support.wait_for(lambda: postgres.query_ok(), result['lease_expires_at'] - time.time() + 15)
    assert time.time() < result['started_at'] + 30, 'came back at the deadline, not at the lease end'
    history = support.history(postgres.state_dir, result['fault_id'])
    assert history['reverted_by'] == 'guard:lease-expired' and history['revert_ok'] is True


def test_check_mode_finds_the_server_and_stops_nothing(postgres):
    pid = postgres.main_pid()
    result = support.run_module('chaos_db', postgres.module_args(duration=5, state_dir=postgres.state_dir,
                                                                 _ansible_check_mode=True))
    assert result['changed'] is True and result['plan']['server_pid'] == pid
    assert result['plan']['pg_ctl'].endswith('/pg_ctl') and result['plan']['run_as'] == 'postgres'
    heavy = support.run_module('chaos_db', postgres.module_args(intensity='heavy', state_dir=postgres.state_dir,
                                                                _ansible_check_mode=True))
    assert heavy['plan']['duration'] == 30.0 and heavy['expires_at'] - heavy['started_at'] == pytest.approx(30.0)
    assert postgres.query_ok() and postgres.main_pid() == pid
    assert _guard.list_records(postgres.state_dir) == []


@pytest.mark.parametrize('args, message', [
    (dict(duration=5, intensity='light'), 'parameters are mutually exclusive: duration|intensity'),
    (dict(), 'state is present but any of the following are missing: duration, intensity'),
    (dict(duration=5, control='systemd'), 'control=systemd needs `systemd_unit`'),
    (dict(duration=5, action='connections', connections=0), '`connections` must be at least 1, got 0'),
])
def test_bad_input_is_named(tmp_path, args, message):
    params = dict(engine='postgresql', state_dir=str(tmp_path / 'state'), login_port=1)
    params.update(args)
    result = support.run_module('chaos_db', params)
    assert result['failed'] is True and message in result['msg']
    assert not os.path.exists(str(tmp_path / 'state'))


@pytest.mark.parametrize('engine', ['postgresql', 'mysql'])
def test_table_lock_blocks_other_sessions_until_the_guard_releases(request, engine):
    server = server_for(request, engine)
    server.execute('INSERT INTO writes (id, at) VALUES (%s, %s)', (1, 1.0))
    result = support.run_module('chaos_db', server.module_args(action='lock', table='writes', duration=4,
                                                               state_dir=server.state_dir))
    assert result.get('failed') is not True, result
    assert result['details']['held_connections'] == 1 and result['effect']['down_confirmed'] is True
    assert server.query_ok(), 'the server itself must stay up'
    # Another session's write waits for the lock and goes through once the guard has released it.
    db = server.connect(timeout=10)
    try:
        if engine == 'postgresql':
            db.execute('INSERT INTO writes (id, at) VALUES (2, 2.0)')
        else:
            with db.cursor() as cursor:
                cursor.execute('INSERT INTO writes (id, at) VALUES (2, 2.0)')
    finally:
        db.close()
    assert time.time() >= result['expires_at'] - 0.5, 'the write did not wait for the lock'
    assert server.ids() == {1, 2}
    assert support.wait_for(lambda: not _guard.process_alive(result['details']['holder_pid']), 5)


def test_lock_of_a_missing_table_is_refused(postgres):
    result = support.run_module('chaos_db', postgres.module_args(action='lock', table='no_such_table', duration=4,
                                                                 state_dir=postgres.state_dir))
    assert result['failed'] is True and '`table` no_such_table cannot be read' in result['msg']
    assert _guard.list_records(postgres.state_dir) == []
