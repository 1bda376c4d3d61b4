"""chaos_container against the real dockerd, with containers of a locally built busybox image.

Each test names its containers with a random suffix, keeps its fault records in its own state
dir, and on the way out reverts what is still active, checks that none of its containers was
left exited or paused, and removes them.
"""

import json
import os
import signal
import sys
import time

import pytest

import support_containers_db as support
from ansible_collections.magsasa.chaos.plugins.module_utils import _guard
from ansible_collections.magsasa.chaos.plugins.module_utils._containers import parse_docker_time
from harness import require, start_playbook, write_play

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------- real dockerd

@pytest.fixture(scope='session')
def busybox_image():
    support.require_dockerd()
    return support.ensure_busybox_image()


@pytest.fixture
def lab(busybox_image, tmp_path):
    """Containers and a fault state dir of this test; everything is undone and checked at the end."""
    class Lab(object):
        state_dir = str(tmp_path / 'state')
        names = []

        def container(self, prefix='chaos-ct', **kwargs):
            name = support.unique(prefix)
            self.names.append(name)
            support.run_httpd_container(name, **kwargs)
            return name

    lab = Lab()
    lab.names = []
    yield lab
    for record in _guard.list_records(lab.state_dir):
        _guard.revert_fault(lab.state_dir, record['fault_id'], 'test-cleanup', timeout=15)
    problems = support.remove_containers(lab.names)
    assert problems == {'exited': [], 'paused': []}, 'containers left stopped or paused: %s' % problems
    assert not set(lab.names) & set(support.docker('ps', '-a', '--format', '{{.Names}}').stdout.split())


def container_ip(name):
    return support.inspect(name)['NetworkSettings']['IPAddress']


def serves(name):
    body = support.http_get(container_ip(name))
    return body is not None and 'busybox says hello' in body


def wait_healthy(name, timeout=20):
    assert support.wait_for(lambda: support.inspect(name)['State'].get('Health', {}).get('Status') == 'healthy', timeout), \
        'container %s never became healthy' % name


def test_crash_through_playbook_restart_policy_brings_it_back(lab, tmp_path):
    name = lab.container(restart='always')
    wait_healthy(name)
    assert serves(name)
    before = support.inspect(name)
    out = tmp_path / 'result.json'
    run = support.run_playbook(str(tmp_path), '''\
        - name: Crash the container
          magsasa.chaos.chaos_container:
            name: %s
            action: crash
            duration: 30
            wait_for_recovery: 30
            state_dir: %s
          register: crash
        - name: Keep the result
          ansible.builtin.copy:
            content: "{{ crash | to_json }}"
            dest: %s
            mode: "0600"
        ''' % (name, lab.state_dir, out))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    after = support.inspect(name)
    assert after['RestartCount'] == before['RestartCount'] + 1
    assert after['State']['Pid'] != before['State']['Pid']
    assert parse_docker_time(after['State']['StartedAt']) > parse_docker_time(before['State']['StartedAt'])
    (entry,) = result['effect']['containers']
    assert entry['name'] == name and entry['action'] == 'crash' and entry['healthcheck'] is True
    assert entry['restart_count_before'] == before['RestartCount']
    assert entry['restart_count_after'] == before['RestartCount'] + 1
    assert entry['recovered'] is True
    # Restart (~0.1 s backoff) plus a healthcheck pass (1 s interval): real time, not zero, not the timeout.
    assert 0.05 < entry['recovery_seconds'] < 30
    assert after['State']['Health']['Status'] == 'healthy'
    assert serves(name), 'busybox httpd does not serve after the crash'

    absent = support.run_module('chaos_container', dict(state='absent', fault_id=result['fault_id'], state_dir=lab.state_dir))
    assert absent['changed'] is True and absent['reverted'] == [result['fault_id']]
    assert _guard.list_records(lab.state_dir) == []


def test_stop_is_undone_by_the_guard_when_ansible_playbook_is_killed(lab, tmp_path):
    name = lab.container(restart='no', healthcheck=False)
    assert support.wait_for(lambda: serves(name), 10)
    started_before = parse_docker_time(support.inspect(name)['State']['StartedAt'])
    path, inventory = write_play(str(tmp_path), '''\
        - name: Stop the container
          magsasa.chaos.chaos_container:
            name: %s
            action: stop
            stop_timeout: 1
            duration: 6
            state_dir: %s
        - name: Hold the fault (the test kills ansible-playbook here)
          ansible.builtin.pause:
            seconds: 60
        ''' % (name, lab.state_dir))
    proc = start_playbook(path, inventory=inventory)
    try:
        assert support.wait_for(lambda: support.inspect(name)['State']['Status'] == 'exited', 30), 'never stopped'
        assert support.wait_for(lambda: _guard.list_records(lab.state_dir), 5)
        (record,) = _guard.list_records(lab.state_dir)
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        assert support.inspect(name)['State']['Status'] == 'exited', 'running again before the deadline'
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    expires_at = record['expires_at']
    assert support.wait_for(lambda: support.inspect(name)['State']['Running'], expires_at - time.time() + 5), \
        'not running again by the deadline'
    restarted = parse_docker_time(support.inspect(name)['State']['StartedAt'])
    assert restarted > started_before
    assert restarted >= expires_at - 0.5, 'started before the deadline'
    assert restarted < expires_at + 5
    assert support.wait_for(lambda: serves(name), 10)
    history = support.history(lab.state_dir, record['fault_id'])
    assert history['reverted_by'] == 'guard:deadline' and history['revert_ok'] is True
    assert _guard.list_records(lab.state_dir) == []


def test_pause_picks_count_of_labelled_containers_and_guard_unpauses(lab):
    label = support.unique('grp')
    names = [lab.container(healthcheck=False, labels={'magsasa.test': label}) for _ in range(3)]
    lab.container(healthcheck=False)  # not labelled: must never be touched
    result = support.run_module('chaos_container', dict(
        labels={'magsasa.test': label}, count=2, action='pause', duration=4, state_dir=lab.state_dir))
    assert result.get('failed') is not True, result
    assert sorted(result['plan']['matched']) == sorted(names)
    hit = set(t['name'] for t in result['plan']['targets'])
    assert len(hit) == 2 and hit <= set(names)
    paused = set(n for n in lab.names if support.inspect(n)['State']['Paused'])
    assert paused == hit
    for name in hit:
        assert support.http_get(container_ip(name), timeout=0.5) is None, 'a paused container answered'
    assert support.wait_for(lambda: not any(support.inspect(n)['State']['Paused'] for n in hit),
                            result['expires_at'] - time.time() + 5), 'still paused after the deadline'
    assert time.time() >= result['expires_at'] - 0.5
    for name in lab.names:
        assert support.inspect(name)['State']['Running']
        assert support.wait_for(lambda: serves(name), 5)
    history = support.history(lab.state_dir, result['fault_id'])
    assert history['reverted_by'] == 'guard:deadline' and history['revert_ok'] is True


def test_kill_is_a_manual_stop_that_the_guard_ends(lab):
    """docker kill is not a crash: the restart policy does not act, so the guard starts it at the deadline."""
    name = lab.container(restart='always', healthcheck=False)
    before = support.inspect(name)
    result = support.run_module('chaos_container', dict(
        name=name, action='kill', signal='SIGKILL', duration=4, wait_for_recovery=1.5, state_dir=lab.state_dir))
    (entry,) = result['effect']['containers']
    assert entry['recovered'] is False and entry['recovery_seconds'] is None
    assert entry['status'] == 'exited' and entry['restart_count_after'] == before['RestartCount']
    assert support.wait_for(lambda: support.inspect(name)['State']['Running'], result['expires_at'] - time.time() + 5)
    assert support.wait_for(lambda: serves(name), 5)


def test_restart_action_reports_recovery(lab):
    name = lab.container(healthcheck=True)
    wait_healthy(name)
    before = support.inspect(name)
    result = support.run_module('chaos_container', dict(
        id=before['Id'][:12], action='restart', stop_timeout=1, duration=2, state_dir=lab.state_dir))
    (entry,) = result['effect']['containers']
    assert entry['recovered'] is True and 0 < entry['recovery_seconds'] < 30
    assert parse_docker_time(support.inspect(name)['State']['StartedAt']) > parse_docker_time(before['State']['StartedAt'])
    assert serves(name)


def test_check_mode_plans_and_touches_nothing(lab):
    name = lab.container(healthcheck=False)
    pid = support.inspect(name)['State']['Pid']
    result = support.run_module('chaos_container', dict(
        name=name, action='crash', duration=5, state_dir=lab.state_dir, _ansible_check_mode=True))
    assert result['changed'] is True and [t['name'] for t in result['plan']['targets']] == [name]
    assert support.inspect(name)['State']['Pid'] == pid
    assert not os.path.exists(lab.state_dir)


def test_unreachable_daemon_fails_naming_docker_host(busybox_image, tmp_path):
    socket_path = str(tmp_path / 'no-such-docker.sock')
    result = support.run_module('chaos_container', dict(
        name='anything', duration=5, docker_host='unix://' + socket_path, state_dir=str(tmp_path / 'state')))
    assert result['failed'] is True
    assert 'docker_host=unix://%s' % socket_path in result['msg']
    assert not os.path.exists(str(tmp_path / 'state'))


def test_selector_matching_nothing_fails_before_anything_is_done(lab):
    lab.container(healthcheck=False)
    missing = support.unique('chaos-ct-missing')
    result = support.run_module('chaos_container', dict(name=missing, duration=5, state_dir=lab.state_dir))
    assert result['failed'] is True
    assert 'no running container matches name=%s' % missing in result['msg']
    result = support.run_module('chaos_container', dict(
        labels={'magsasa.test': support.unique('none')}, duration=5, state_dir=lab.state_dir))
    assert result['failed'] is True and 'no running container matches labels=' in result['msg']
    assert _guard.list_records(lab.state_dir) == []


@pytest.mark.parametrize('args, message', [
    (dict(percent=150), '`percent` must be more than 0 and at most 100, got 150'),
    (dict(count=0), '`count` must be at least 1, got 0'),
    (dict(action='kill', signal='SIGBOGUS'), "`signal` must be a signal name such as SIGTERM or SIGKILL, got 'SIGBOGUS'"),
    (dict(count=1, percent=10), 'parameters are mutually exclusive: count|percent'),
])
def test_bad_input_is_named(busybox_image, tmp_path, args, message):
    params = dict(name='whatever', duration=5, state_dir=str(tmp_path / 'state'))
    params.update(args)
    result = support.run_module('chaos_container', params)
    assert result['failed'] is True and message in result['msg']


def test_revert_action_plain_and_tls():
    from ansible_collections.magsasa.chaos.plugins.module_utils import _docker_tls
    from ansible_collections.magsasa.chaos.plugins.module_utils._containers import revert_action
    installed = []

    def install(program, filename):
        installed.append((program, filename))
        return '/state/' + filename

    plain = revert_action(dict(docker_host='tcp://10.0.0.1:2375', tls=False, validate_certs=False), 'start', 'abc',
                          install)
    assert plain == dict(type='docker', op='start', container='abc', docker_host='tcp://10.0.0.1:2375')
    assert installed == []  # the guard's own action needs no program
    tls = revert_action(dict(docker_host='tcp://10.0.0.1:2376', tls=False, validate_certs=True, ca_path='/ca.pem',
                             client_cert='/c.pem', client_key='/k.pem', timeout=20), 'unpause', 'abc', install)
    assert installed == [(_docker_tls, 'magsasa_chaos_docker_tls.py')]
    assert tls['type'] == 'command' and tls['argv'][:2] == [sys.executable, '/state/magsasa_chaos_docker_tls.py']
    # The record names the program and its arguments, never its source.
    assert len(tls['argv']) == 3
    spec = _docker_tls.parse_spec(tls['argv'][2])
    assert spec['op'] == 'unpause' and spec['container'] == 'abc' and spec['validate_certs'] is True
    assert spec['ca_path'] == '/ca.pem' and spec['client_key'] == '/k.pem'


# ---------------------------------------------------------------- Podman, through its Docker-compatible API

@pytest.fixture(scope='session')
def podman(tmp_path_factory):
    """A Podman API service of our own on a socket in a temp dir (runc, cgroupfs: no systemd here)."""
    require('podman', 'Debian package podman')
    support.ensure_busybox_image()
    base = tmp_path_factory.mktemp('podman')
    service = support.PodmanService(str(base))
    try:
        service.start()
        yield service
    finally:
        service.stop()


def podman_serves(service, name):
    ip = service.inspect(name)['NetworkSettings']['IPAddress']
    body = support.http_get(ip)
    return body is not None and 'busybox says hello' in body


def test_podman_crash_restart_policy_brings_it_back(podman, tmp_path):
    name = support.unique('chaos-pm')
    state_dir = str(tmp_path / 'state')
    try:
        podman.run_httpd(name, restart='always')
        assert support.wait_for(lambda: podman_serves(podman, name), 10)
        before = podman.inspect(name)
        result = support.run_module('chaos_container', dict(
            name=name, action='crash', duration=3, wait_for_recovery=20, docker_host=podman.url, state_dir=state_dir))
        assert result.get('failed') is not True, result
        (entry,) = result['effect']['containers']
        after = podman.inspect(name)
        assert after['RestartCount'] == before['RestartCount'] + 1 == entry['restart_count_after']
        assert after['State']['Pid'] != before['State']['Pid']
        assert entry['recovered'] is True and 0 < entry['recovery_seconds'] < 20
        assert support.wait_for(lambda: podman_serves(podman, name), 10)
        assert support.wait_for(lambda: not _guard.list_records(state_dir), result['expires_at'] - time.time() + 5)
    finally:
        problems = podman.remove([name])
    assert problems == {'exited': [], 'paused': []}


def test_podman_stop_is_started_again_by_the_guard(podman, tmp_path):
    name = support.unique('chaos-pm')
    state_dir = str(tmp_path / 'state')
    try:
        podman.run_httpd(name)
        result = support.run_module('chaos_container', dict(
            name=name, action='stop', stop_timeout=1, duration=3, docker_host=podman.url, state_dir=state_dir))
        assert result.get('failed') is not True, result
        assert podman.inspect(name)['State']['Status'] == 'exited'
        assert support.wait_for(lambda: podman.inspect(name)['State']['Running'], result['expires_at'] - time.time() + 5)
        assert time.time() >= result['expires_at'] - 0.5
        assert support.wait_for(lambda: podman_serves(podman, name), 10)
        history = support.history(state_dir, result['fault_id'])
        assert history['reverted_by'] == 'guard:deadline' and history['revert_ok'] is True
    finally:
        problems = podman.remove([name])
    assert problems == {'exited': [], 'paused': []}


def test_tls_docker_host_pause_is_undone_by_the_guard_over_tls(lab, tmp_path):
    """docker_host over TLS with client certificates: the guard cannot use its stdlib action and runs the
    Docker SDK through a command action instead; the container must still be unpaused at the deadline."""
    require('openssl')
    proxy = support.DockerTlsProxy(str(tmp_path)).start()
    try:
        name = lab.container(healthcheck=False)
        args = dict(name=name, action='pause', duration=3, state_dir=lab.state_dir)
        args.update(proxy.module_args())
        result = support.run_module('chaos_container', args)
        assert result.get('failed') is not True, result.get('msg')
        assert support.inspect(name)['State']['Paused'] is True
        (record,) = _guard.list_records(lab.state_dir)
        assert [a['type'] for a in record['revert']] == ['command']
        assert support.wait_for(lambda: not support.inspect(name)['State']['Paused'], result['expires_at'] - time.time() + 10)
        history = support.history(lab.state_dir, result['fault_id'])
        assert history['reverted_by'] == 'guard:deadline' and history['revert_ok'] is True
        assert history['revert_results'][0]['result'] == 'rc=0'
        refused = dict(args, validate_certs=True, client_cert=None, client_key=None)
        failed = support.run_module('chaos_container', refused)
        assert failed['failed'] is True and 'docker_host=%s' % proxy.url in failed['msg']
    finally:
        proxy.stop()


def test_compose_service_of_one_project_only(lab):
    """Containers as Docker Compose labels them: only the service of the named project is hit."""
    project = support.unique('proj')
    web = [lab.container(healthcheck=False, labels={'com.docker.compose.project': project,
                                                    'com.docker.compose.service': 'web'}) for _ in range(2)]
    other_project = lab.container(healthcheck=False, labels={'com.docker.compose.project': project + 'x',
                                                             'com.docker.compose.service': 'web'})
    other_service = lab.container(healthcheck=False, labels={'com.docker.compose.project': project,
                                                             'com.docker.compose.service': 'db'})
    result = support.run_module('chaos_container', dict(compose_service='web', compose_project=project, percent=100,
                                                        action='pause', duration=2, state_dir=lab.state_dir))
    assert result.get('failed') is not True, result.get('msg')
    assert sorted(t['name'] for t in result['plan']['targets']) == sorted(web)
    assert all(support.inspect(n)['State']['Paused'] for n in web)
    assert not support.inspect(other_project)['State']['Paused'] and not support.inspect(other_service)['State']['Paused']
    assert support.wait_for(lambda: not any(support.inspect(n)['State']['Paused'] for n in web),
                            result['expires_at'] - time.time() + 5)
    assert support.history(lab.state_dir, result['fault_id'])['revert_ok'] is True
