"""resilience_probe against real HTTP servers, real detached samplers and real ansible-playbook runs.

Ground truth comes from this test's own clock: it takes a real server down and up (or slows it
down) at times it records itself, and checks what the probe measured against that.
"""

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

import pytest
from ansible_collections.magsasa.chaos.plugins.module_utils import _metrics, _probe

from harness import REPO_ROOT, HealthyHandler, QuietHandler, free_port, run_playbook, start_playbook

PLAYBOOK = str(REPO_ROOT / 'tests' / 'playbooks' / 'resilience_probe.yml')
HEALTHY = b'{"status": "ok", "checks": [{"name": "db", "ok": true}]}'


class Handler(HealthyHandler):
    body = HEALTHY


class FlakyServer:
    """A real HTTP server on a fixed loopback port that the test can take down, bring back and slow down."""

    def __init__(self):
        self.port = None
        self.delay = 0.0
        self.server = None
        self.thread = None
        self.up()

    @property
    def url(self):
        return 'http://127.0.0.1:%d/health' % self.port

    def up(self):
        """Listen again; returns (before, after): connections succeed from some time in between."""
        before = time.time()
        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(('127.0.0.1', self.port or 0), Handler)
        self.server.daemon_threads = True
        self.server.delay = self.delay
        self.port = self.server.server_address[1]
        listening_at = time.time()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.005})
        self.thread.daemon = True
        self.thread.start()
        return before, listening_at

    def down(self):
        """Stop listening; returns (before, after): connections are refused from some time in between."""
        before = time.time()
        self.server.shutdown()
        self.server.server_close()
        refused_at = time.time()
        self.thread.join()
        return before, refused_at

    def set_delay(self, seconds):
        self.delay = seconds
        self.server.delay = seconds

    def close(self):
        if self.thread is not None and self.thread.is_alive():
            self.down()


@pytest.fixture
def server():
    flaky = FlakyServer()
    try:
        yield flaky
    finally:
        flaky.close()


@pytest.fixture
def probe_dir(tmp_path):
    path = tmp_path / ('probes-%s' % uuid.uuid4().hex[:6])
    started = []
    yield str(path), started
    # every sampler a test started must be gone; kill leftovers by their own pid, then fail
    leftovers = [(pid, pid_id) for pid, pid_id in started if _probe.pid_is_sampler(pid, pid_id)]
    for pid, dummy in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert not leftovers, 'samplers left running: %s' % leftovers


def read_json(path):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def read_text(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def launch(probe_dir, url, interval, max_lifetime=60, timeout=1.0):
    directory, started = probe_dir
    probe_id = 'test-%s' % uuid.uuid4().hex[:8]
    config = {'type': 'http', 'url': url, 'interval': interval, 'timeout': timeout, 'max_lifetime': max_lifetime,
              'probe_id': probe_id, 'concurrency': _probe.default_concurrency(interval, timeout),
              'expected_status': [200], 'json_path': '$.checks[0].ok', 'json_value': True}
    state = _probe.launch(config, directory)
    started.append((state['pid'], probe_id))
    return probe_id, state['pid'], _probe.probe_paths(directory, probe_id)


def run_probe_playbook(tmp_path, calls, timeout=120, check=False, **extra):
    result_file = tmp_path / ('result-%s.json' % uuid.uuid4().hex[:6])
    extra_vars = dict(extra, probe_calls=calls, probe_result_file=str(result_file), ansible_python_interpreter=sys.executable)
    vars_file = tmp_path / ('vars-%s.json' % uuid.uuid4().hex[:6])
    vars_file.write_text(json.dumps(extra_vars))
    proc = run_playbook(PLAYBOOK, inventory='localhost,', args=['-e', '@%s' % vars_file] + (['--check'] if check else []),
                        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(result_file.read_text())


def assert_outage_matches(metrics, samples, down, up, interval):
    """The one outage starts and ends within one interval of the test's own down/up times.

    ``down`` and ``up`` are (before, after) pairs from the test's clock around the server's
    state change; the truth lies in between, so each bound gets that (millisecond) slack.
    An outage's bounds are the times its boundary samples were sent; a loaded machine can
    send a sample a few ms after its slot was due, so each bound also gets the dispatch lag
    of the sample that makes it -- and that lag must stay under one interval, which is the
    probe's own line between a sample on time and a late one.
    """
    shortest, longest = up[0] - down[1], up[1] - down[0]
    assert len(metrics['outages']) == 1, metrics['outages']
    outage = metrics['outages'][0]
    assert outage['open'] is False
    lag = dict((round(s['sent'], 6), s['sent'] - s['scheduled']) for s in samples)
    start_lag, end_lag = lag[round(outage['start'], 6)], lag[round(outage['end'], 6)]
    assert 0 <= start_lag < interval and 0 <= end_lag < interval, (start_lag, end_lag)
    assert down[0] - interval <= outage['start'] <= down[1] + interval + start_lag, (outage, down, start_lag)
    assert up[0] - interval <= outage['end'] <= up[1] + interval + end_lag, (outage, up, end_lag)
    assert shortest - interval - start_lag <= outage['duration_seconds'] <= longest + interval + end_lag, (outage, down, up)
    assert shortest - interval - start_lag <= metrics['mttr_seconds'] <= longest + interval + end_lag, \
        (metrics['mttr_seconds'], down, up)


def test_outage_and_mttr_at_100ms_through_ansible_playbook(server, probe_dir, tmp_path):
    """The whole lifecycle through real ansible-playbook runs: started, the outage, stopped with the fault window."""
    directory, started = probe_dir
    interval = 0.1
    common = {'probe_dir': directory, 'url': server.url, 'interval': interval, 'timeout': 1.0,
              'json_path': '$.status', 'json_value': 'ok'}
    # started and stopped by separate runs: owner_pid 0 keeps the sampler beyond the run that started it
    start = run_probe_playbook(tmp_path, [dict(common, state='started', max_lifetime=90, owner_pid=0)])['results'][0]
    assert start['changed'] is True and start['running'] is True, start
    started.append((start['pid'], start['probe_id']))
    assert _probe.pid_is_sampler(start['pid'], start['probe_id'])
    os.kill(start['pid'], 0)

    time.sleep(1.0)
    fault_start = time.time()
    time.sleep(0.5)
    down = server.down()
    time.sleep(1.5)
    up = server.up()
    fault_end = time.time()
    time.sleep(1.0)

    out = run_probe_playbook(tmp_path, [dict(common, state='stopped', probe_id=start['probe_id'], fault_start=fault_start,
                                       fault_end=fault_end, stop_conditions={'max_consecutive_failures': 3})],
                       probe_filter={'fault_start': fault_start, 'fault_end': fault_end,
                                     'targets': {'mttr_seconds': 30, 'min_availability_percent': 99}})
    final = out['results'][0]
    assert final['changed'] is True and final['running'] is False and final['exit_reason'] == 'stopped', final
    assert not _probe.pid_is_sampler(start['pid'], start['probe_id'])
    assert final['samples_path'] == start['samples_path'] and os.path.exists(final['samples_path'])

    metrics = final['metrics']
    assert_outage_matches(metrics, _metrics.load_samples_file(final['samples_path']), down, up, interval)
    assert metrics['recovered'] is True and metrics['recovery_seconds'] <= 2 * interval
    assert down[0] - interval <= fault_start + metrics['time_to_first_failure_seconds'] <= down[1] + interval
    assert final['stop_condition']['breached'] is True
    assert final['summary']['slots_missed'] == 0
    assert 0 < len(final['timeline']) <= 60 and any(not p['ok'] for p in final['timeline'])

    # the filters, in the same real run, agree with the module and judge the SLO
    filtered = out['filtered']
    assert filtered['metrics'] == dict((k, v) for k, v in metrics.items() if k != 'probe_load')
    # the probe's own load, which no filter can know from the samples: 10 Hz, under its cap
    load = metrics['probe_load']
    assert load == final['probe_load'], (load, final['probe_load'])
    assert (load['interval_seconds'], load['rate_hz']) == (interval, 10.0), load
    assert load['concurrency'] == _probe.default_concurrency(interval, 1.0), load
    assert 1 <= load['max_in_flight'] <= load['concurrency'], load
    assert filtered['slo']['verdict'] == 'fail'
    assert [c['metric'] for c in filtered['slo']['checks'] if not c['passed']] == ['availability_percent']
    assert filtered['stop']['breached'] is True
    assert filtered['timeline'] == final['timeline']


def test_outage_and_mttr_at_20ms(server, probe_dir):
    interval = 0.02
    probe_id, pid, paths = launch(probe_dir, server.url, interval)
    time.sleep(0.6)
    fault_start = time.time()
    time.sleep(0.2)
    down = server.down()
    time.sleep(0.8)
    up = server.up()
    fault_end = time.time()
    time.sleep(0.6)
    assert _probe.stop(probe_dir[0], probe_id) is True
    assert not _probe.pid_is_sampler(pid, probe_id)

    samples = _metrics.load_samples_file(paths['samples'])
    state = read_json(paths['state'])
    assert state['exit_reason'] == 'stopped'
    assert state['slots_missed'] == 0
    metrics = _metrics.compute_metrics(samples, fault_start=fault_start, fault_end=fault_end)
    assert_outage_matches(metrics, samples, down, up, interval)
    # samples kept their own schedule: one slot per interval, sent on time
    assert len(samples) >= (fault_end - fault_start + 1.0) / interval
    lags = sorted(s['sent'] - s['scheduled'] for s in samples)
    assert lags[len(lags) // 2] < interval / 2


def test_latency_degradation_within_10_percent(server, probe_dir):
    delay = 0.1
    probe_id, dummy, paths = launch(probe_dir, server.url, 0.02)
    time.sleep(1.5)
    fault_start = time.time()
    server.set_delay(delay)
    time.sleep(1.5)
    server.set_delay(0.0)
    fault_end = time.time()
    time.sleep(0.3)
    _probe.stop(probe_dir[0], probe_id)
    metrics = _metrics.compute_metrics(_metrics.load_samples_file(paths['samples']),
                                       fault_start=fault_start, fault_end=fault_end)
    assert metrics['samples_failed'] == 0
    assert abs(metrics['latency_degradation_ms'] - delay * 1000) <= delay * 1000 * 0.10, metrics['latency_ms']
    assert metrics['latency_ms']['fault']['p50'] >= delay * 1000


def test_hanging_responses_do_not_stall_the_clock(server, probe_dir):
    interval = 0.02
    server.set_delay(0.5)
    probe_id, dummy, paths = launch(probe_dir, server.url, interval, timeout=2.0)
    time.sleep(1.2)
    _probe.stop(probe_dir[0], probe_id, timeout=5)
    samples = _metrics.load_samples_file(paths['samples'])
    state = read_json(paths['state'])
    # each request takes 500 ms, yet the 20 ms slots left on time (a stalled clock would make
    # nearly every slot late; a busy shared machine may delay the odd one)
    assert state['slots_scheduled'] >= 50
    assert state['slots_missed'] == 0 and state['slots_late'] <= 2
    assert len(samples) >= state['slots_scheduled'] - 1
    lags = sorted(s['sent'] - s['scheduled'] for s in samples)
    assert lags[len(lags) // 2] < interval / 4 and lags[int(len(lags) * 0.9)] < interval
    assert min(s['latency_ms'] for s in samples) >= 500


class CountingHandler(QuietHandler):
    """Counts, on the server's side, how many requests are being served at the same moment."""

    def do_GET(self):
        counts = self.server.counts
        with counts['lock']:
            counts['now'] += 1
            counts['max'] = max(counts['max'], counts['now'])
            counts['total'] += 1
        try:
            time.sleep(0.3)
            self.reply(200, HEALTHY)
        finally:
            with counts['lock']:
                counts['now'] -= 1


def test_the_probe_never_has_more_requests_in_flight_than_its_cap(probe_dir):
    """Slow answers (300 ms) at a 20 ms interval would need 15 requests in flight; with a cap of 3 the
    target never sees more than 3 at once, and the slots with no free worker are missed, not sent later."""
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), CountingHandler)
    httpd.daemon_threads = True
    httpd.counts = {'lock': threading.Lock(), 'now': 0, 'max': 0, 'total': 0}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.01}, daemon=True)
    thread.start()
    directory, started = probe_dir
    probe_id = 'cap-%s' % uuid.uuid4().hex[:6]
    config = {'type': 'http', 'url': 'http://127.0.0.1:%d/health' % httpd.server_address[1], 'interval': 0.02,
              'timeout': 2.0, 'max_lifetime': 60, 'probe_id': probe_id, 'concurrency': 3, 'expected_status': [200]}
    try:
        state = _probe.launch(config, directory)
        started.append((state['pid'], probe_id))
        time.sleep(1.5)
        _probe.stop(directory, probe_id, timeout=5)
    finally:
        httpd.shutdown()
        httpd.server_close()
    state = read_json(_probe.probe_paths(directory, probe_id)['state'])
    counts = httpd.counts
    assert counts['max'] == 3, 'the target saw %d requests at once, cap 3' % counts['max']
    assert state['max_in_flight'] == 3 and state['concurrency'] == 3, state
    assert state['slots_missed'] >= 0.6 * state['slots_scheduled'], state
    assert counts['total'] <= state['slots_scheduled'] - state['slots_missed'], (counts, state)
    load = _probe.probe_load(config, state)
    assert load == {'interval_seconds': 0.02, 'rate_hz': 50.0, 'concurrency': 3, 'max_in_flight': 3}


def test_check_mode_starts_nothing_but_still_checks_the_steady_state(server, probe_dir, tmp_path):
    directory = probe_dir[0]
    started, once = run_probe_playbook(tmp_path, [
        {'state': 'started', 'url': server.url, 'probe_dir': directory, 'probe_id': 'dry-run'},
        {'url': server.url, 'samples': 2, 'interval': 0.05},
    ], check=True)['results']
    assert started['changed'] is True and started['pid'] is None and started['running'] is False
    assert not os.path.exists(directory)
    assert once['passed'] is True and len(once['samples']) == 2


def test_https_validate_certs(tmp_path):
    cert, key = str(tmp_path / 'cert.pem'), str(tmp_path / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.delay = 0.0
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        config = {'type': 'http', 'url': 'https://127.0.0.1:%d/health' % httpd.server_address[1], 'timeout': 2.0,
                  'interval': 0.05, 'json_path': '$.status', 'json_value': 'ok'}
        verified, dummy = _probe.run_once(dict(config, validate_certs=True), 2)
        unverified, dummy = _probe.run_once(dict(config, validate_certs=False), 2)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [s['ok'] for s in verified] == [False, False]
    assert 'CERTIFICATE_VERIFY_FAILED' in verified[0]['error']
    assert [(s['ok'], s['status']) for s in unverified] == [(True, 200), (True, 200)]


def test_a_stalled_sampler_skips_ahead_instead_of_bursting(server, probe_dir):
    interval = 0.02
    probe_id, pid, paths = launch(probe_dir, server.url, interval)
    time.sleep(0.5)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    time.sleep(0.5)
    _probe.stop(probe_dir[0], probe_id)
    samples = _metrics.load_samples_file(paths['samples'])
    state = read_json(paths['state'])
    # about 25 slots fell into the stop: they are counted missed, not fired all at once on resume
    assert 20 <= state['slots_missed'] <= 30, state
    burst = [s for s in samples if resumed - 0.05 <= s['sent'] <= resumed + 0.05]
    assert len(burst) <= 6, burst
    assert state['slots_scheduled'] == len(samples) + state['slots_missed']


def test_sampler_outlives_a_sigkilled_controller_only_until_max_lifetime(server, probe_dir, tmp_path):
    """With owner_pid 0 (not tied to its controller; by default it ends with it, see tests/test_fleet.py)
    a sampler still ends by itself at max_lifetime."""
    directory, started = probe_dir
    probe_id = 'killed-%s' % uuid.uuid4().hex[:6]
    paths = _probe.probe_paths(directory, probe_id)
    extra_vars = {'probe_calls': [{'state': 'started', 'probe_id': probe_id, 'probe_dir': directory,
                                   'url': server.url, 'interval': 0.05, 'max_lifetime': 6, 'owner_pid': 0}],
                  'probe_hold_seconds': 60, 'probe_result_file': str(tmp_path / 'never.json'),
                  'ansible_python_interpreter': sys.executable}
    vars_file = tmp_path / 'kill-vars.json'
    vars_file.write_text(json.dumps(extra_vars))
    controller = start_playbook(PLAYBOOK, inventory='localhost,', args=['-e', '@%s' % vars_file])
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(paths['state']) and time.monotonic() < deadline:
            assert controller.poll() is None, 'ansible-playbook ended before the probe started'
            time.sleep(0.1)
        pid = read_json(paths['state'])['pid']
        started.append((pid, probe_id))
        time.sleep(0.5)
    finally:
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
    killed_at = time.monotonic()
    # the sampler is detached: the controller's death does not take it along ...
    assert _probe.pid_is_sampler(pid, probe_id)
    assert os.getsid(pid) == pid
    # ... but it ends by itself at max_lifetime
    launched = read_json(paths['state'])['started_at']
    while _probe.pid_is_sampler(pid, probe_id) and time.monotonic() < killed_at + 15:
        time.sleep(0.1)
    assert not _probe.pid_is_sampler(pid, probe_id)
    state = read_json(paths['state'])
    assert state['exit_reason'] == 'max_lifetime reached'
    assert 5.5 <= state['finished_at'] - launched <= 8.0
    samples = _metrics.load_samples_file(paths['samples'])
    assert samples and max(s['scheduled'] for s in samples) <= launched + 6.0
    size = os.path.getsize(paths['samples'])
    time.sleep(0.3)
    assert os.path.getsize(paths['samples']) == size


def test_stopped_with_remove_probe_dir_computes_then_removes_the_experiments_directory(server, probe_dir, tmp_path):
    own = os.path.join(probe_dir[0], 'experiment-%s' % uuid.uuid4().hex[:6])
    probe_id, pid, paths = launch((own, probe_dir[1]), server.url, 0.05)
    with open(os.path.join(own, 'stop'), 'w', encoding='utf-8') as handle:
        handle.write('a holder stopped the experiment')
    time.sleep(0.5)
    now = time.time()
    calls = [
        {'state': 'status', 'probe_id': probe_id, 'probe_dir': own, 'remove_probe_dir': True},
        {'state': 'stopped', 'probe_id': probe_id, 'remove_probe_dir': True},
        {'state': 'stopped', 'probe_id': probe_id, 'probe_dir': own, 'remove_probe_dir': True,
         'fault_start': now - 0.3, 'fault_end': now - 0.1},
    ]
    # a directory another probe shares (here: another probe's state file next to ours) is refused
    other = os.path.join(own, 'other-probe.state.json')
    with open(other, 'w', encoding='utf-8') as handle:
        handle.write('{}')
    calls.insert(2, {'state': 'stopped', 'probe_id': probe_id, 'probe_dir': own, 'remove_probe_dir': True})
    results = run_probe_playbook(tmp_path, calls[:3])['results']
    os.unlink(other)
    wrong_state, unknown, shared = results
    assert wrong_state['failed'] and '`remove_probe_dir` applies to state=stopped only' in wrong_state['msg'], wrong_state
    assert unknown['failed'], unknown
    assert shared['failed'] and 'the files of other probes' in shared['msg'] and 'other-probe' in shared['msg'], shared
    assert _probe.pid_is_sampler(pid, probe_id), 'a refused stop stopped the sampler'
    (stopped,) = run_probe_playbook(tmp_path, calls[3:])['results']
    assert stopped['changed'] is True and stopped['running'] is False and stopped['removed'] == own, stopped
    # the metrics come from the samples, read before the directory went
    assert stopped['metrics']['samples_total'] >= 5 and stopped['metrics']['availability_percent'] == 100.0
    assert not os.path.exists(own) and not _probe.pid_is_sampler(pid, probe_id)


def test_once_and_bad_inputs_through_ansible_playbook(server, probe_dir, tmp_path):
    directory = probe_dir[0]
    closed = free_port()
    corrupt_id, dummy, paths = launch(probe_dir, server.url, 0.05)
    time.sleep(0.3)
    _probe.stop(directory, corrupt_id)
    with open(paths['samples'], 'a', encoding='utf-8') as handle:
        handle.write('{"seq": 99, "sent": 1.0, "ok": tr')

    live_id, live_pid, dummy = launch(probe_dir, server.url, 0.05)
    live = {'probe_id': live_id, 'probe_dir': directory}

    calls = [
        dict(live, state='status', stop_conditions={'window': 5, 'max_consecutive_failures': 2},
             fault_end=time.time(), recovery_samples=3),
        dict(live, state='stopped'),
        dict(live, state='stopped'),
        {'url': server.url, 'samples': 5, 'interval': 0.05, 'body_regex': '"status": "ok"', 'max_latency_ms': 500},
        {'url': 'http://127.0.0.1:%d/health' % closed, 'samples': 3, 'interval': 0.05},
        {'url': server.url, 'samples': 3, 'interval': 0.05, 'expected_status': [204], 'fail_on_unhealthy': False},
        {'url': server.url, 'interval': 0},
        {'url': server.url, 'interval': -1},
        {'state': 'status', 'probe_id': 'test-%s' % corrupt_id, 'probe_dir': directory,
         'stop_conditions': {'max_error_rate_percent': -5}},
        {'state': 'status', 'probe_id': 'no-such-probe', 'probe_dir': directory},
        {'state': 'status', 'probe_id': corrupt_id, 'probe_dir': directory},
        {'state': 'started', 'url': 'ftp://127.0.0.1/', 'probe_dir': directory},
        {'state': 'started', 'url': server.url, 'probe_dir': directory, 'max_lifetime': 0},
        {'type': 'tcp', 'host': '127.0.0.1', 'port': server.port, 'samples': 2, 'interval': 0.05},
        {'type': 'command', 'command': ['false'], 'samples': 2, 'interval': 0.05},
    ]
    results = run_probe_playbook(tmp_path, calls)['results']
    status, stopped, stopped_again = results[:3]
    results = results[3:]

    assert status['changed'] is False and status['running'] is True and status['exit_reason'] is None
    assert status['summary']['samples_total'] > 0 and status['summary']['samples_failed'] == 0
    assert status['rolling']['samples_total'] == 5
    assert status['stop_condition']['breached'] is False
    assert status['recovery']['recovered'] is True and 0 <= status['recovery']['recovery_seconds'] <= 0.1
    assert stopped['changed'] is True and stopped['running'] is False and stopped['exit_reason'] == 'stopped'
    assert stopped['summary']['samples_total'] >= status['summary']['samples_total']
    assert 'metrics' not in stopped
    assert stopped_again['changed'] is False and stopped_again['summary'] == stopped['summary']
    assert not _probe.pid_is_sampler(live_pid, live_id)

    healthy, refused, wrong_status, zero, negative, bad_threshold, unknown, corrupt, ftp, lifetime, tcp, command = results

    assert healthy['failed'] is False and healthy['passed'] is True and len(healthy['samples']) == 5
    assert all(s['status'] == 200 for s in healthy['samples'])

    assert refused['failed'] is True and refused['passed'] is False
    assert 'steady-state check of http://127.0.0.1:%d/health failed' % closed in refused['msg']
    assert 'Connection refused (3x)' in refused['msg']

    assert wrong_status['failed'] is False and wrong_status['passed'] is False
    assert 'status 200 not in expected_status [204]' in wrong_status['reasons'][0]

    assert zero['failed'] is True and zero['msg'] == '`interval` must be at least 0.01 seconds, got 0.0'
    assert negative['failed'] is True and negative['msg'] == '`interval` must be at least 0.01 seconds, got -1.0'
    assert bad_threshold['msg'] == '`stop_conditions.max_error_rate_percent` must be 0-100, got -5.0'
    assert unknown['failed'] is True
    assert unknown['msg'].startswith("unknown `probe_id` 'no-such-probe': no probe state no-such-probe.state.json")
    assert corrupt['failed'] is True
    assert corrupt['msg'].startswith('samples file %s is truncated at line %d: ' % (
        paths['samples'], len(read_text(paths['samples']).splitlines())))
    assert ftp['msg'] == "`url` must be an http:// or https:// URL with a host, got 'ftp://127.0.0.1/'"
    assert lifetime['msg'] == '`max_lifetime` must be greater than 0, got 0.0'
    # the rejected `started` calls launched nothing
    assert sorted(n for n in os.listdir(directory) if n.endswith('.state.json')) == sorted(
        ['%s.state.json' % corrupt_id, '%s.state.json' % live_id])

    assert tcp['passed'] is True
    assert command['failed'] is True and 'exit status 1' in command['msg']
