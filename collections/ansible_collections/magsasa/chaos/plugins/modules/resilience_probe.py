#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: resilience_probe
short_description: Probe a service on a fixed timeline and measure how it survives a fault
version_added: 0.1.0
description:
  - Samples an HTTP(S) URL, a TCP port or a command at a fixed O(interval) (down to 10 ms), on its own clock.
    Slots are scheduled on a fixed timeline and handed to a pool of worker threads, so a slow or hanging response
    never delays the next slot. Each sample keeps its scheduled time, actual send time, latency, status and error.
  - O(state=started) launches a background sampler that detaches fully (new session, no inherited stdio) and streams
    samples as JSON lines into O(probe_dir); O(state=status) reports counts, rolling statistics and whether a stop
    condition is breached; O(state=stopped) stops the sampler and returns the final summary, the resilience metrics
    when O(fault_start) is given, and the samples path.
  - O(state=once) is a steady-state check in the foreground, O(samples) samples, passed or failed with reasons.
  - The sampler uses the Python standard library only, so it runs on the controller (C(delegate_to=localhost)) or on
    any vantage host with Python 3.8 or later. It exits by itself after O(max_lifetime) seconds, so it never outlives
    a dead controller.
  - Metrics are defined once, in the C(magsasa.chaos._metrics) module utility; the same functions back the
    M(magsasa.chaos.resilience_probe) summary and the P(magsasa.chaos.resilience_metrics#filter) filter.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details:
      - O(state=once) and O(state=status) only read, and run normally in check mode.
      - O(state=started) and O(state=stopped) report the change they would make and start or stop nothing.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  idempotent:
    description: Running the task twice with the same options changes nothing the second time.
    support: partial
    details:
      - O(state=stopped) on a sampler that is already gone reports no change.
      - O(state=started) without O(probe_id) starts a new sampler every time; with an existing O(probe_id) it fails.
options:
  state:
    description:
      - V(once) samples O(samples) times in the foreground and judges the steady state.
      - V(started) launches the background sampler, V(status) reads its progress, V(stopped) stops it and summarizes.
    type: str
    choices: [once, started, status, stopped]
    default: once
  probe_id:
    description:
      - Name of the background probe. Required for O(state=status) and O(state=stopped).
      - With O(state=started) a random V(probe-<hex>) is generated when omitted.
      - Letters, digits, C(.), C(_) and C(-) only.
    type: str
  probe_dir:
    description:
      - Directory on the probing host for the probe's samples (C(<probe_id>.samples.jsonl)), state, config and the
        sampler script, with the C(magsasa_chaos_proc.py) and C(magsasa_chaos_atomic.py) it imports. Created with
        mode C(0700) when missing.
    type: path
    default: ~/.ansible/magsasa_chaos/probes
  type:
    description: What a sample does.
    type: str
    choices: [http, tcp, command]
    default: http
  url:
    description: The C(http://) or C(https://) URL to request. Required for O(type=http).
    type: str
  method:
    description: HTTP method.
    type: str
    default: GET
  headers:
    description:
      - Extra HTTP request headers. Treated as secret (C(no_log)), so a bearer token never reaches the output;
        they are stored in the probe's config file with mode C(0600).
    type: dict
    default: {}
  body:
    description: HTTP request body, sent as UTF-8.
    type: str
  expected_status:
    description: HTTP status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  body_regex:
    description: A regular expression that must match (search) the response body.
    type: str
  json_path:
    description:
      - A simple JSON path into the response body, like V($.status) or V(data.items[0].name); the sample fails when it
        is missing or the body is not JSON.
    type: str
  json_value:
    description:
      - The value expected at O(json_path), compared as is or as strings (V(ok) matches V("ok"), V(1) matches V("1")).
      - Without it, O(json_path) only has to exist.
    type: raw
  host:
    description: Host to connect to for O(type=tcp).
    type: str
  port:
    description: Port to connect to for O(type=tcp).
    type: int
  command:
    description: Argument vector run (without a shell) for O(type=command); exit status 0 is healthy.
    type: list
    elements: str
  timeout:
    description: Seconds a sample may take before it counts as failed. Must be greater than 0.
    type: float
    default: 2.0
  validate_certs:
    description: Verify the TLS certificate and host name of an C(https://) URL.
    type: bool
    default: true
  interval:
    description:
      - Seconds between scheduled samples; at least V(0.01).
      - The probe is a load on its target like any client. At the default 10 Hz it moves a loopback HTTP target's
        median latency by no more than 1 ms or 10 % (C(bench/bench_observer.py) measures it against 1 Hz); choose
        the rate with the target's capacity in mind, and read the load actually applied in RV(probe_load).
    type: float
    default: 0.1
  concurrency:
    description:
      - Most requests in flight at once, a hard cap on the probe's own load on the target. A slot that finds every
        worker busy is counted as missed, never sent later; RV(probe_load) reports the most that were in flight.
      - Defaults to enough workers for one O(timeout) worth of slots, between 4 and 256.
    type: int
  max_lifetime:
    description: Seconds after which a background sampler exits by itself, whatever happens to its controller.
    type: float
    default: 3600
  samples:
    description: Number of samples for O(state=once).
    type: int
    default: 5
  min_success_percent:
    description: Percentage of successful samples O(state=once) needs to pass (0-100).
    type: float
    default: 100
  max_latency_ms:
    description: With O(state=once), the p95 latency of the successful samples must not exceed this.
    type: float
  fail_on_unhealthy:
    description: With O(state=once), fail the task when the steady-state check does not pass.
    type: bool
    default: true
  stop_conditions:
    description:
      - Abort thresholds that O(state=status) and O(state=stopped) evaluate over the samples since O(fault_start)
        (all samples without it). A single failed sample never breaches them.
    type: dict
    suboptions:
      window:
        description: Number of most recent samples the error rate is computed over.
        type: int
        default: 20
      max_error_rate_percent:
        description: Breached when the error rate over O(stop_conditions.window) samples exceeds this (0-100).
        type: float
      max_consecutive_failures:
        description: Breached when this many samples in a row failed; at least V(2).
        type: int
  owner_pid:
    description:
      - With O(state=started), the background sampler stops within half a second once this process is gone.
      - Defaults to the outermost C(ansible-playbook) process among the module's ancestors (the controller), so a
        killed controller never leaves a sampler probing the target. V(0) keeps the sampler running until
        O(state=stopped) or O(max_lifetime).
    type: int
  baseline_start:
    description: Epoch seconds where the baseline window begins (default the first sample).
    type: float
  fault_start:
    description:
      - Epoch seconds the fault was injected. With O(state=stopped) it makes the result carry RV(metrics) and
        RV(timeline); with O(state=status) it bounds the stop-condition evaluation.
    type: float
  fault_end:
    description:
      - Epoch seconds the fault was reverted; recovery time is measured from here.
      - With O(state=status) or O(state=stopped) the result carries RV(recovery).
    type: float
  observe_end:
    description: Epoch seconds the observation after the fault ends (default the last sample).
    type: float
  recovery_samples:
    description: Number of healthy samples in a row that count as recovered.
    type: int
    default: 3
  recovery_timeout:
    description: Seconds after O(fault_end) within which recovery must happen to count.
    type: float
  remove_probe_dir:
    description:
      - With O(state=stopped), remove O(probe_dir) and everything in it once the metrics are computed, in the same
        module run (a chaos experiment gives each probe a directory of its own, with its stop file in it).
      - Refused when O(probe_dir) holds another probe's files (the default directory is shared).
    type: bool
    default: false
notes:
  - Every sample opens a fresh connection, so connection reuse never hides an outage.
  - A background sampler's files stay in O(probe_dir) after O(state=stopped) for the report; remove them when done.
seealso:
  - plugin: magsasa.chaos.resilience_metrics
    plugin_type: filter
  - plugin: magsasa.chaos.slo_verdict
    plugin_type: filter
"""

EXAMPLES = r"""
- name: The target must be healthy before we break it
  magsasa.chaos.resilience_probe:
    url: http://127.0.0.1:8080/api/health
    json_path: $.status
    json_value: ok
    samples: 10
    interval: 0.2
  delegate_to: localhost

- name: Start probing in the background
  magsasa.chaos.resilience_probe:
    state: started
    url: http://127.0.0.1:8080/api/health
    interval: 0.05
    max_lifetime: 600
  delegate_to: localhost
  register: chaos_probe

- name: Poll the probe during the fault and abort on a real outage
  magsasa.chaos.resilience_probe:
    state: status
    probe_id: "{{ chaos_probe.probe_id }}"
    fault_start: "{{ chaos_fault_start }}"
    stop_conditions:
      window: 20
      max_error_rate_percent: 50
      max_consecutive_failures: 10
  delegate_to: localhost
  register: chaos_probe_status

- name: Stop probing and compute the metrics
  magsasa.chaos.resilience_probe:
    state: stopped
    probe_id: "{{ chaos_probe.probe_id }}"
    fault_start: "{{ chaos_fault_start }}"
    fault_end: "{{ chaos_fault_end }}"
    recovery_samples: 3
    recovery_timeout: 30
  delegate_to: localhost
  register: chaos_probe_final

- name: Judge the metrics against the SLO
  ansible.builtin.debug:
    msg: "{{ chaos_probe_final.metrics | magsasa.chaos.slo_verdict({'mttr_seconds': 30, 'max_error_rate_percent': 5}) }}"

- name: A TCP-connect probe
  magsasa.chaos.resilience_probe:
    type: tcp
    host: 127.0.0.1
    port: 5432
    samples: 3
"""

RETURN = r"""
probe_id:
  description: Name of the background probe.
  returned: when O(state) is not V(once)
  type: str
  sample: probe-3f2a91c04d
probe_dir:
  description: Directory holding the probe's files.
  returned: when O(state) is not V(once)
  type: str
  sample: /root/.ansible/magsasa_chaos/probes
samples_path:
  description: The JSON-lines samples file, one sample per line.
  returned: when O(state) is not V(once)
  type: str
  sample: /root/.ansible/magsasa_chaos/probes/probe-3f2a91c04d.samples.jsonl
removed:
  description: The probe directory removed with O(remove_probe_dir); RV(samples_path) is gone with it.
  returned: with O(state=stopped) and O(remove_probe_dir=true), not in check mode
  type: str
pid:
  description: Process id of the background sampler (null in check mode).
  returned: when O(state=started)
  type: int
  sample: 41235
started_at:
  description: Epoch seconds the background sampler started (null in check mode).
  returned: when O(state=started)
  type: float
  sample: 1764440000.12
running:
  description: Whether the background sampler is running (after the task, for O(state=stopped)).
  returned: when O(state) is not V(once)
  type: bool
  sample: true
exit_reason:
  description: Why the sampler ended (V(stopped) or V(max_lifetime reached)); null while it runs.
  returned: when O(state=status) or O(state=stopped)
  type: str
  sample: stopped
summary:
  description: Counts and latency percentiles over all samples so far, plus the scheduler's slot counters.
  returned: when O(state) is not V(started)
  type: dict
  sample:
    samples_total: 600
    samples_ok: 590
    samples_failed: 10
    error_rate_percent: 1.67
    availability_percent: 98.33
    latency_ms: {p50: 1.2, p95: 2.5, p99: 4.0}
    first_sample_at: 1764440000.12
    last_sample_at: 1764440059.92
    slots_scheduled: 600
    slots_missed: 0
    slots_late: 0
    missed_percent: 0.0
rolling:
  description: Counts and latency percentiles over the last O(stop_conditions.window) samples.
  returned: when O(state=status) or O(state=stopped)
  type: dict
  sample: {samples_total: 20, samples_ok: 20, samples_failed: 0, error_rate_percent: 0.0}
stop_condition:
  description:
    - The stop-condition evaluation. RV(stop_condition.breached) is true when an abort threshold was crossed at any
      point since O(fault_start).
  returned: when O(state=status) or O(state=stopped)
  type: dict
  contains:
    breached:
      description: Whether to abort the experiment.
      type: bool
      returned: always
    reasons:
      description: What was breached, with the value, threshold and time.
      type: list
      elements: str
      returned: always
  sample:
    breached: false
    breached_at: null
    reasons: []
    samples_evaluated: 300
    window_error_rate_percent: 0.0
    worst_window_error_rate_percent: 5.0
    consecutive_failures: 0
    longest_failure_streak: 1
recovery:
  description:
    - Whether the target recovered after O(fault_end), by the same rule as C(recovered) in RV(metrics), so the recovery phase
      of an experiment can poll O(state=status) until it did (or O(recovery_timeout) passed).
  returned: when O(state=status) or O(state=stopped), and O(fault_end) is given
  type: dict
  contains:
    recovered:
      description: True once O(recovery_samples) healthy samples in a row started at or after O(fault_end).
      type: bool
      returned: always
    recovery_seconds:
      description: Seconds from O(fault_end) to the first of those samples; null until recovered.
      type: float
      returned: always
  sample: {recovered: true, recovery_seconds: 0.4}
metrics:
  description:
    - The C(metrics) section of the experiment record, computed from the samples and the fault window
      (definitions in the C(_metrics) module utility).
  returned: when O(state=stopped) and O(fault_start) is given
  type: dict
  sample:
    samples_total: 412
    samples_failed: 13
    availability_percent: 96.84
    error_rate_percent: 3.16
    mttr_seconds: 1.3
    recovery_seconds: 0.4
    recovered: true
    time_to_first_failure_seconds: 2.1
    latency_degradation_ms: 41.0
    latency_ms: {baseline: {p50: 3.1, p95: 5.2, p99: 8.0}, fault: {p50: 30.0, p95: 46.2, p99: 80.1}}
    outages: [{start: 1764440002.2, end: 1764440003.5, duration_seconds: 1.3, open: false}]
    probe_load: {interval_seconds: 0.1, rate_hz: 10.0, concurrency: 22, max_in_flight: 1}
probe_load:
  description:
    - The load the probe itself put on the target, disclosed next to what it measured (also in RV(metrics)).
    - C(rate_hz) requests per second at most (one per O(interval)), never more than C(concurrency) at once;
      C(max_in_flight) is the most that were in flight at any moment.
  returned: when O(state=once), O(state=status) or O(state=stopped)
  type: dict
  sample: {interval_seconds: 0.1, rate_hz: 10.0, concurrency: 22, max_in_flight: 1}
timeline:
  description: At most 60 downsampled points for the report chart, C(t) in seconds relative to O(fault_start).
  returned: when O(state=stopped) and O(fault_start) is given
  type: list
  elements: dict
  sample: [{t: -5.0, latency_ms: 3.2, ok: true}]
passed:
  description: Whether the steady-state check passed.
  returned: when O(state=once)
  type: bool
  sample: false
reasons:
  description: Why the steady-state check failed (empty when it passed).
  returned: when O(state=once)
  type: list
  elements: str
  sample: ["3 of 5 samples failed, min_success_percent is 100: ConnectionRefusedError: [Errno 111] Connection refused (3x)"]
samples:
  description: The samples of the steady-state check.
  returned: when O(state=once)
  type: list
  elements: dict
  sample: [{seq: 0, scheduled: 1764440000.1, sent: 1764440000.1002, latency_ms: 1.9, ok: true, status: 200, error: null}]
"""

import os
import re
import shutil
import traceback
import uuid
from collections import Counter

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._metrics import (
    MetricsError, compute_metrics, evaluate_stop_condition, load_samples_file, recovery, summarize, timeline,
)
from ansible_collections.magsasa.chaos.plugins.module_utils import _proc
from ansible_collections.magsasa.chaos.plugins.module_utils._probe import (
    ProbeError, controller_pid, default_concurrency, launch, parse_json_path, pid_is_sampler, probe_load, probe_paths,
    read_json, run_once, stop,
)

PROBE_ID_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
MIN_INTERVAL = 0.01
DEFAULT_PROBE_DIR = '~/.ansible/magsasa_chaos/probes'
STATE_SUFFIX = '.state.json'


class ResilienceProbe:
    """One probe: validates its options, then runs, starts, reads or stops the sampler."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.probe_dir = self.params['probe_dir']

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def validate(self):
        p = self.params
        if p['interval'] < MIN_INTERVAL:
            self.fail('`interval` must be at least %s seconds, got %s' % (MIN_INTERVAL, p['interval']))
        for name in ('timeout', 'max_lifetime'):
            if p[name] <= 0:
                self.fail('`%s` must be greater than 0, got %s' % (name, p[name]))
        for name in ('samples', 'recovery_samples', 'concurrency'):
            if p[name] is not None and p[name] < 1:
                self.fail('`%s` must be at least 1, got %s' % (name, p[name]))
        for name in ('max_latency_ms', 'recovery_timeout'):
            if p[name] is not None and p[name] < 0:
                self.fail('`%s` must not be negative, got %s' % (name, p[name]))
        if not 0 <= p['min_success_percent'] <= 100:
            self.fail('`min_success_percent` must be 0-100, got %s' % p['min_success_percent'])
        stop_conditions = p['stop_conditions'] or {}
        if stop_conditions.get('window') is not None and stop_conditions['window'] < 1:
            self.fail('`stop_conditions.window` must be at least 1, got %s' % stop_conditions['window'])
        rate = stop_conditions.get('max_error_rate_percent')
        if rate is not None and not 0 <= rate <= 100:
            self.fail('`stop_conditions.max_error_rate_percent` must be 0-100, got %s' % rate)
        streak = stop_conditions.get('max_consecutive_failures')
        if streak is not None and streak < 2:
            self.fail('`stop_conditions.max_consecutive_failures` must be at least 2 (a single blip must not abort), '
                      'got %s' % streak)
        if p['probe_id'] is not None and not PROBE_ID_PATTERN.match(p['probe_id']):
            self.fail('`probe_id` may hold letters, digits, ".", "_" and "-" only (at most 64), got %r' % p['probe_id'])
        if p['remove_probe_dir']:
            if p['state'] != 'stopped':
                self.fail('`remove_probe_dir` applies to state=stopped only, got state=%s' % p['state'])
            others = sorted(name[:-len(STATE_SUFFIX)] for name in self.listdir() if name.endswith(STATE_SUFFIX)
                            and name != p['probe_id'] + STATE_SUFFIX)
            if others:
                self.fail('`remove_probe_dir` would remove the files of other probes in probe_dir %s (%s); give the '
                          'probe a probe_dir of its own' % (self.probe_dir, ', '.join(others[:5])))
        if p['state'] in ('once', 'started'):
            self.validate_target()
        if p['fault_start'] is not None and p['fault_end'] is not None and p['fault_end'] < p['fault_start']:
            self.fail('`fault_end` (%s) must not be before `fault_start` (%s)' % (p['fault_end'], p['fault_start']))

    def listdir(self):
        try:
            return os.listdir(self.probe_dir)
        except OSError:
            return []

    def validate_target(self):
        p = self.params
        if p['type'] == 'http':
            if not p['url'] or not re.match(r'^https?://[^/?#]+', p['url']):
                self.fail('`url` must be an http:// or https:// URL with a host, got %r' % p['url'])
            for code in p['expected_status']:
                if not 100 <= code <= 599:
                    self.fail('`expected_status` entries must be HTTP status codes 100-599, got %s' % code)
            if p['body_regex'] is not None:
                try:
                    re.compile(p['body_regex'])
                except re.error as exc:
                    self.fail('`body_regex` is not a valid regular expression (%s): %r' % (exc, p['body_regex']))
            if p['json_path'] is not None:
                try:
                    parse_json_path(p['json_path'])
                except ProbeError as exc:
                    self.fail('`json_path`: %s' % exc)
        elif p['type'] == 'tcp':
            if not p['host'] or p['port'] is None or not 1 <= p['port'] <= 65535:
                self.fail('`type=tcp` needs `host` and `port` 1-65535, got host=%r port=%r' % (p['host'], p['port']))
        elif not p['command']:
            self.fail('`type=command` needs a non-empty `command`, got %r' % (p['command'],))

    def config(self, probe_id):
        p = self.params
        keys = ('type', 'url', 'method', 'headers', 'body', 'expected_status', 'body_regex', 'json_path',
                'json_value', 'host', 'port', 'command', 'timeout', 'validate_certs', 'interval', 'max_lifetime')
        config = dict((key, p[key]) for key in keys)
        config['method'] = config['method'].upper()
        config['probe_id'] = probe_id
        config['concurrency'] = p['concurrency'] or default_concurrency(p['interval'], p['timeout'])
        owner = controller_pid() if p['owner_pid'] is None else p['owner_pid']
        config['owner_pid'] = owner or None
        config['owner_starttime'] = _proc.starttime(owner) if owner else None
        return config

    def run_once(self):
        p = self.params
        config = self.config('once')
        samples, counters = run_once(config, p['samples'])
        summary = summarize(samples)
        summary.update(self.slot_summary(counters))
        reasons = []
        success = 100.0 * summary['samples_ok'] / p['samples']
        if success < p['min_success_percent']:
            errors = Counter(s['error'] for s in samples if not s['ok'])
            detail = '; '.join('%s (%dx)' % (error, count) for error, count in errors.most_common(3))
            reasons.append('%d of %d samples failed, min_success_percent is %s: %s'
                           % (summary['samples_failed'], p['samples'], p['min_success_percent'], detail))
        p95 = summary['latency_ms']['p95']
        if p['max_latency_ms'] is not None and p95 is not None and p95 > p['max_latency_ms']:
            reasons.append('p95 latency %.2f ms exceeds max_latency_ms %s' % (p95, p['max_latency_ms']))
        result = dict(changed=False, passed=not reasons, reasons=reasons, summary=summary, samples=samples,
                      probe_load=probe_load(config, counters))
        if reasons and p['fail_on_unhealthy']:
            target = p['url'] or ('%s:%s' % (p['host'], p['port']) if p['type'] == 'tcp' else ' '.join(p['command']))
            self.fail('steady-state check of %s failed: %s' % (target, ' | '.join(reasons)), **result)
        return result

    def start(self):
        probe_id = self.params['probe_id'] or 'probe-%s' % uuid.uuid4().hex[:10]
        paths = probe_paths(self.probe_dir, probe_id)
        result = dict(changed=True, probe_id=probe_id, probe_dir=self.probe_dir, samples_path=paths['samples'])
        if self.module.check_mode:
            return dict(result, pid=None, started_at=None, running=False)
        state = launch(self.config(probe_id), self.probe_dir)
        return dict(result, pid=state['pid'], started_at=state['started_at'], running=True)

    def existing(self):
        probe_id = self.params['probe_id']  # required_if: given with state=status and state=stopped
        paths = probe_paths(self.probe_dir, probe_id)
        if not os.path.exists(paths['state']):
            self.fail('unknown `probe_id` %r: no probe state %s in probe_dir %s'
                      % (probe_id, os.path.basename(paths['state']), self.probe_dir))
        return probe_id, paths

    @staticmethod
    def slot_summary(state):
        scheduled = state.get('slots_scheduled') or 0
        missed = (state.get('slots_missed') or 0) + (state.get('slots_late') or 0)
        return {'slots_scheduled': scheduled, 'slots_missed': state.get('slots_missed') or 0,
                'slots_late': state.get('slots_late') or 0,
                'missed_percent': round(100.0 * missed / scheduled, 3) if scheduled else None}

    def report(self, probe_id, paths, changed, final):
        p = self.params
        state = read_json(paths['state'], 'probe state')
        running = pid_is_sampler(state.get('pid'), probe_id)
        samples = load_samples_file(paths['samples'], growing=running) if os.path.exists(paths['samples']) else []
        stop_conditions = p['stop_conditions'] or {}
        window = stop_conditions.get('window') or 20
        summary = summarize(samples)
        summary.update(self.slot_summary(state))
        result = dict(
            changed=changed, probe_id=probe_id, probe_dir=self.probe_dir, samples_path=paths['samples'],
            running=running, exit_reason=None if running else state.get('exit_reason') or 'killed',
            summary=summary, rolling=summarize(samples[-window:]),
            probe_load=probe_load(read_json(paths['config'], 'probe config'), state),
            stop_condition=evaluate_stop_condition(
                samples, window=window, max_error_rate_percent=stop_conditions.get('max_error_rate_percent'),
                max_consecutive_failures=stop_conditions.get('max_consecutive_failures'), since=p['fault_start']),
        )
        if p['fault_end'] is not None:
            seconds, recovered = recovery(samples, p['fault_end'], p['recovery_samples'], p['recovery_timeout'])
            result['recovery'] = {'recovered': recovered, 'recovery_seconds': seconds}
        if final and p['fault_start'] is not None:
            result['metrics'] = compute_metrics(
                samples, fault_start=p['fault_start'], fault_end=p['fault_end'], observe_end=p['observe_end'],
                baseline_start=p['baseline_start'], recovery_samples=p['recovery_samples'],
                recovery_timeout=p['recovery_timeout'])
            result['metrics']['probe_load'] = result['probe_load']
            result['timeline'] = timeline(samples, fault_start=p['fault_start'])
        return result

    def status(self):
        probe_id, paths = self.existing()
        return self.report(probe_id, paths, changed=False, final=False)

    def stopped(self):
        probe_id, paths = self.existing()
        state = read_json(paths['state'], 'probe state')
        was_running = pid_is_sampler(state.get('pid'), probe_id)
        if was_running and not self.module.check_mode:
            stop(self.probe_dir, probe_id, timeout=self.params['timeout'] + 10)
        result = self.report(probe_id, paths, changed=was_running, final=True)
        if self.params['remove_probe_dir'] and not self.module.check_mode:
            shutil.rmtree(self.probe_dir)
            result.update(changed=True, removed=self.probe_dir)
        return result

    def run(self):
        self.validate()
        action = {'once': self.run_once, 'started': self.start, 'status': self.status, 'stopped': self.stopped}
        return action[self.params['state']]()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='once', choices=['once', 'started', 'status', 'stopped']),
            probe_id=dict(type='str'),
            probe_dir=dict(type='path', default=DEFAULT_PROBE_DIR),
            type=dict(type='str', default='http', choices=['http', 'tcp', 'command']),
            url=dict(type='str'),
            method=dict(type='str', default='GET'),
            headers=dict(type='dict', default={}, no_log=True),
            body=dict(type='str'),
            expected_status=dict(type='list', elements='int', default=[200]),
            body_regex=dict(type='str'),
            json_path=dict(type='str'),
            json_value=dict(type='raw'),
            host=dict(type='str'),
            port=dict(type='int'),
            command=dict(type='list', elements='str'),
            timeout=dict(type='float', default=2.0),
            validate_certs=dict(type='bool', default=True),
            interval=dict(type='float', default=0.1),
            concurrency=dict(type='int'),
            max_lifetime=dict(type='float', default=3600),
            samples=dict(type='int', default=5),
            min_success_percent=dict(type='float', default=100),
            max_latency_ms=dict(type='float'),
            fail_on_unhealthy=dict(type='bool', default=True),
            stop_conditions=dict(type='dict', options=dict(
                window=dict(type='int', default=20),
                max_error_rate_percent=dict(type='float'),
                max_consecutive_failures=dict(type='int'),
            )),
            owner_pid=dict(type='int'),
            baseline_start=dict(type='float'),
            fault_start=dict(type='float'),
            fault_end=dict(type='float'),
            observe_end=dict(type='float'),
            recovery_samples=dict(type='int', default=3),
            recovery_timeout=dict(type='float'),
            remove_probe_dir=dict(type='bool', default=False),
        ),
        required_if=[
            ('state', 'status', ['probe_id']),
            ('state', 'stopped', ['probe_id']),
        ],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**ResilienceProbe(module).run())
    except (ProbeError, MetricsError) as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())


if __name__ == '__main__':
    main()
