# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure rendering of chaos experiment records (controller side, used by the chaos_report callback).

Everything here takes plain dicts and returns strings: no files, no Ansible objects, so the
report can be unit-tested and re-rendered from a saved chaos_results.json.

* build_report(records, run) -> the view model every renderer (and a user template) reads
* render_markdown(report, template_text=None) -> chaos_report.md through a Jinja2 template
* render_json(report) / render_junit(report) -> chaos_results.json / junit.xml
* one_line_summary(report) -> the line printed at the end of the run
"""

import json
import math
import os
import re
import xml.etree.ElementTree as ET

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from ansible_collections.magsasa.chaos.plugins.module_utils._catalog import SLO_METRICS

REPORT_SCHEMA = 'magsasa.chaos/report/v1'

DEFAULT_TEMPLATE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'templates', 'chaos_report.md.j2')

# (metric key in record.metrics, SLO target key in record.slo.targets, label, unit, comparison)
METRICS = tuple((metric, target, label, unit, op) for target, metric, op, label, unit in SLO_METRICS)

MARK_PASS = u'\u2705'
MARK_FAIL = u'\u274c'
MARK_NONE = u'\u2796'
MARK_EXPECTED = u'\u26a0\ufe0f'

# What to change in the system under test when a metric misses its SLO. Keyed by metric.
RECOMMENDATIONS = {
    'mttr_seconds': [
        'Detect failure faster: health checks every 1-2 s with a failure threshold of 2-3, and '
        'automatic restart (systemd `Restart=on-failure`, a Docker restart policy, a Kubernetes liveness probe).',
        'Fail over instead of waiting for the broken instance: run at least two replicas behind the load '
        'balancer and let its health check take a failing one out of rotation within seconds.',
        'Shorten restart time: lazy-load caches, keep start-up under a few seconds, and keep a warm standby '
        'for stateful parts (database replica with automatic promotion).',
    ],
    'error_rate_percent': [
        'Retry idempotent calls with exponential backoff and full jitter (for example 3 attempts, 100 ms base, '
        '2 s cap) so short blips do not reach users, and never retry without a budget.',
        'Put a circuit breaker around each dependency (open after about 50 % failures over 10 s, half-open probe '
        'after 30 s) so a sick dependency fails fast instead of piling up requests.',
        'Degrade gracefully: serve cached or default responses for read paths when a dependency is down, '
        'and queue writes that can wait.',
    ],
    'availability_percent': [
        'Remove single points of failure: at least two instances per tier, spread across hosts or zones, '
        'behind a load balancer.',
        'Gate traffic with readiness probes (or load-balancer health checks) so instances that are starting '
        'or overloaded receive no requests.',
        'Reconnect instead of failing: enable connection-pool validation (pre-ping / test-on-borrow) and '
        'reconnect with backoff after a database or broker restart.',
    ],
    'latency_degradation_ms': [
        'Set explicit timeouts and deadlines on every outbound call (connect about 1 s, total below the '
        'caller\'s own timeout) so slow dependencies cannot hold threads.',
        'Keep capacity headroom: autoscale on CPU or request latency before saturation (target about 60-70 % '
        'utilisation) and set CPU/memory requests and limits so noisy neighbours cannot starve the service.',
        'Isolate work with bulkheads (separate worker and connection pools per dependency) and shed load '
        'with rate limits when queues grow.',
    ],
    'recovery_seconds': [
        'Make the service recover by itself once the fault ends: connection pools that reconnect '
        '(TCP keepalive, validation on borrow, short idle timeouts) rather than waiting for OS-level timeouts.',
        'Readiness probes that report ready only when dependencies answer, so traffic returns as soon as the '
        'service can serve it, and not before.',
        'Fail back faster: shorter DNS/service-discovery TTLs and health-check intervals, and warm caches '
        'after restart instead of on first request.',
    ],
}

# One extra, fault-specific hint shown with the metric advice.
TYPE_HINTS = {
    'cpu': 'CPU stress hurt the service: reserve CPU (cgroup cpu.weight / Kubernetes requests), '
           'autoscale on CPU, and move heavy work off the request path.',
    'memory': 'Memory pressure hurt the service: set memory limits with headroom, bound caches and queues, '
              'and alert on swap and OOM kills.',
    'disk': 'Disk I/O stress hurt the service: move logs and temp files off the data volume, use async or '
            'buffered logging, and set I/O limits (cgroup io.max) for batch jobs.',
    'network_delay': 'Network delay hurt the service: tighten timeouts, cut chatty round trips (batching, '
                     'connection reuse), and cache remote reads.',
    'packet_loss': 'Packet loss hurt the service: retry idempotent requests with backoff and jitter, and '
                   'prefer keep-alive connections over new handshakes.',
    'partition': 'A partition hurt the service: make the dependency optional where possible (cached or '
                 'stale reads), and fail over to another zone or replica.',
    'container': 'A container crash hurt the service: use a restart policy, run more than one replica, and '
                 'make start-up fast.',
    'process': 'A process crash hurt the service: supervise it (systemd Restart=, supervisor autorestart) '
               'and run more than one worker.',
    'database': 'Database downtime hurt the service: reconnect from the pool with backoff, serve cached '
                'reads, and keep a replica ready to promote.',
}

# Keys whose values never reach a report, a record's parameters or a preflight message: the one
# list (the experiment role reads it through the without_secrets filter). "pass" counts as a word
# (login_pass, pass) or the start of password/passphrase, never inside "passed".
_SECRET_KEY_RE = re.compile(
    r'(pass(w(or)?d|phrase)?($|[_-])|[_-]pass|secret|token|webhook|api[_-]?key|private[_-]?key|credential|auth'
    r'|cookie|session[_-]?id|(^|[_-])key$)',
    re.IGNORECASE)
_URL_USERINFO_RE = re.compile(r'([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@')
_CONTROL_RE = re.compile(u'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
_MD_BACKSLASH_RE = re.compile(r'([\\`*_\[\]|#~!{}])')
_MERMAID_UNSAFE_RE = re.compile(r'[^A-Za-z0-9 .,:()+\-/_=%]')

MAX_TEXT = 300


# ---------------------------------------------------------------------------------------
# Safety: secrets and escaping
# ---------------------------------------------------------------------------------------

def is_secret_key(key):
    """True for keys whose values must never be written to a report."""
    return bool(_SECRET_KEY_RE.search(str(key)))


def without_secrets(params):
    """A dict without its secret-looking keys (at any depth) and without credentials in URLs."""
    return redact(params)


def redact(value):
    """Return a copy of value without secret-looking keys and without credentials in URLs."""
    if isinstance(value, dict):
        return dict((str(k), redact(v)) for k, v in value.items() if not is_secret_key(k))
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_USERINFO_RE.sub(r'\1***@', value)
    return value


def plain_text(value, limit=MAX_TEXT):
    """One line of text: no control characters, newlines folded, bounded length."""
    if value is None:
        return ''
    text = str(value).replace('\r\n', ' ').replace('\n', ' ').replace('\r', ' ').replace('\t', ' ')
    text = _CONTROL_RE.sub('', text)
    if limit and len(text) > limit:
        text = text[:limit - 3] + '...'
    return text


def md_escape(value, limit=MAX_TEXT):
    """Escape an untrusted string so it stays inside one Markdown table cell and renders as text.

    Newlines are folded (a string cannot start a new row or heading), Markdown punctuation
    and the table pipe are backslash-escaped, and `<`, `>`, `&` become entities so no HTML
    reaches the page.
    """
    text = plain_text(value, limit)
    text = text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return _MD_BACKSLASH_RE.sub(r'\\\1', text)


def mermaid_text(value, limit=80):
    """Reduce an untrusted string to characters that are inert inside a mermaid quoted label."""
    text = _MERMAID_UNSAFE_RE.sub(' ', plain_text(value, 0))
    text = text.replace('%%', '%')
    text = ' '.join(text.split())
    return text[:limit].strip()


def md_code(value, in_table=False):
    """An untrusted string as one Markdown code span (commands, URLs, paths): shown verbatim.

    The fence is one backtick longer than the longest run of backticks inside, so the text
    cannot close it; inside a table cell a pipe is escaped, which GFM removes again there.
    """
    text = plain_text(value, 0)
    if not text:
        return Markup('')
    if in_table:
        text = text.replace('|', '\\|')
    longest = max([len(run) for run in re.findall('`+', text)] + [0])
    fence = '`' * (longest + 1)
    if text.startswith('`') or text.endswith('`') or (text.startswith(' ') and text.endswith(' ')):
        text = ' %s ' % text
    return Markup('%s%s%s' % (fence, text, fence))


_MARKUP_CHARS = frozenset('<>&')


def md_text(value, in_table=True, limit=MAX_TEXT):
    """Untrusted prose that may mark commands the Markdown way (`make demo`): the marked spans become
    code spans (shown verbatim), the rest is escaped as by ``md_escape``. Text with an odd number of
    backticks has no spans, and a span holding ``<``, ``>`` or ``&`` stays escaped text, so no markup
    character reaches the page unescaped."""
    parts = plain_text(value, limit).split('`')
    if len(parts) % 2 == 0:
        return Markup(md_escape('`'.join(parts), limit=0))
    rendered = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            rendered.append(md_escape(part, limit=0))
        elif part.strip() and not _MARKUP_CHARS & set(part):
            rendered.append(md_code(part, in_table=in_table))
        else:
            rendered.append(md_escape('`%s`' % part, limit=0))
    return Markup(''.join(rendered))


def xml_text(value):
    """Text that is legal in XML 1.0 (ElementTree escapes markup but keeps control characters)."""
    if value is None:
        return ''
    return _CONTROL_RE.sub('', str(value))


# ---------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def fmt_number(value, unit=''):
    """Format a metric value for people: 1.3 s, 96.8 %, 41 ms; None -> n/a."""
    if not _is_number(value):
        return 'n/a'
    if isinstance(value, float) and abs(value) < 100:
        text = ('%.2f' % value).rstrip('0').rstrip('.')
    else:
        text = '%d' % round(value)
    if not unit:
        return text
    return '%s %s' % (text, unit)


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


# ---------------------------------------------------------------------------------------
# Per-experiment view
# ---------------------------------------------------------------------------------------

def metric_name(check_metric):
    """Normalise an SLO check or target name to the metric key (max_error_rate_percent -> error_rate_percent)."""
    name = str(check_metric or '')
    for prefix in ('max_', 'min_'):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _checks_by_metric(record):
    checks = _get(record, 'slo', 'checks') or []
    found = {}
    for check in checks:
        if isinstance(check, dict):
            found[metric_name(check.get('metric'))] = check
    return found


def probe_load_text(metrics):
    """The load the probe put on the target, as the report states it beside what it measured."""
    load = metrics.get('probe_load') or {}
    if not _is_number(load.get('rate_hz')):
        return 'not recorded'
    text = '%s requests/s, at most %s in flight' % (fmt_number(load['rate_hz']), fmt_number(load.get('concurrency')))
    if _is_number(load.get('max_in_flight')):
        text += ' (%s seen)' % fmt_number(load['max_in_flight'])
    return text


def _metric_value_text(key, value, unit, metrics):
    if value is None:
        if key == 'mttr_seconds' and metrics.get('samples_failed') == 0:
            return 'no outage'
        if key == 'recovery_seconds' and metrics.get('recovered') is False:
            return 'not recovered'
    return fmt_number(value, unit)


_OPERATORS = {'<=': u'\u2264', '>=': u'\u2265', '<': 'below', '>': 'above', '==': '='}


def op_text(op):
    """Comparison for people (<= becomes the single sign, so no escaping is needed)."""
    return _OPERATORS.get(str(op or ''), plain_text(op, 10))


def _mark(passed, expected=False):
    if passed is False and expected:
        return MARK_EXPECTED
    if passed is True:
        return MARK_PASS
    if passed is False:
        return MARK_FAIL
    return MARK_NONE


def experiment_outcome(record):
    """PASS | FAIL | ABORTED | ERROR | SKIPPED | DRY RUN for one record."""
    status = record.get('status')
    if status == 'skipped':
        return 'SKIPPED'
    if status == 'dry_run':
        return 'DRY RUN'
    if status == 'failed':
        return 'ERROR'
    if status == 'aborted':
        return 'ABORTED'
    if failed_checks(record) or _get(record, 'slo', 'verdict') == 'fail':
        return 'FAIL'
    return 'PASS'


def failed_checks(record):
    """The violated checks that count: not those the scenario declared as expected."""
    checks = _get(record, 'slo', 'checks') or []
    return [c for c in checks if isinstance(c, dict) and c.get('passed') is False and not c.get('expected')]


def expected_checks(record):
    """Violations the scenario declared as expected (shown, marked, never a FAIL)."""
    checks = _get(record, 'slo', 'checks') or []
    return [c for c in checks if isinstance(c, dict) and c.get('passed') is False and c.get('expected')]


def recommendations_for(metric, fault_type=None):
    """Concrete advice (Markdown) for a violated metric; the fault-type hint is appended when known."""
    advice = list(RECOMMENDATIONS.get(metric_name(metric), []))
    if not advice:
        advice = ['Investigate why %s missed its target: compare the probe timeline with the fault window '
                  'and the service logs.' % md_escape(metric_name(metric))]
    hint = TYPE_HINTS.get(str(fault_type or ''))
    if hint:
        advice.append(hint)
    return advice


def _violation_view(check, record):
    key = metric_name(check.get('metric'))
    unit = ''
    label = key
    for metric_key, _target_key, metric_label, metric_unit, _op in METRICS:
        if metric_key == key:
            unit, label = metric_unit, metric_label
    value = check.get('value')
    return {
        'metric': key,
        'label': label,
        'value': _metric_value_text(key, value, unit, record.get('metrics') or {}),
        'target': fmt_number(check.get('target'), unit),
        'op': op_text(check.get('op')),
        'text': '%s %s (target %s %s)' % (
            key, _metric_value_text(key, value, unit, record.get('metrics') or {}),
            check.get('op') or '', fmt_number(check.get('target'), unit)),
        'recommendations': [Markup(advice) for advice in recommendations_for(key, record.get('type'))],
    }


def _nice_ceiling(value):
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fault_end_relative(record):
    """Measured fault duration in seconds (fault end relative to fault start), or None."""
    start = _get(record, 'window', 'fault_start')
    end = _get(record, 'window', 'fault_end')
    if not (_is_number(start) and _is_number(end)):
        start = _get(record, 'fault', 'started_at')
        end = _get(record, 'fault', 'ended_at')
    if _is_number(start) and _is_number(end) and end >= start:
        return float(end) - float(start)
    return None


def _fault_window_text(record):
    measured = _fault_end_relative(record)
    if measured is not None:
        return '%s s' % fmt_number(measured)
    planned = _get(record, 'fault', 'planned_duration')
    if _is_number(planned):
        return 'not measured (planned %s s)' % fmt_number(planned)
    return 'n/a'


CHART_BUCKETS = 40
# One colour per series, in the order the series are drawn: the fault window (light grey, so it
# reads as a background band), failed samples (red) and the latency line (blue).
CHART_SERIES = (
    ('fault', 'fault active', 'bar', '#c8c8c8'),
    ('failed', 'failed samples (share)', 'bar', '#d62728'),
    ('latency', 'latency of successful samples (ms)', 'line', '#1f77b4'),
)


def resample_timeline(points, fault_end=None, buckets=CHART_BUCKETS):
    """Spread the probe timeline over evenly spaced times for a chart with a numeric x-axis.

    points are the record's timeline (``t`` seconds from the fault start, ``latency_ms`` of the
    successful samples or None, ``ok``). Returns a dict with ``times`` (``buckets`` evenly spaced
    values from the first to the last ``t``, fewer when there are fewer points) and, per time,
    ``latency`` (mean latency of the points of its bucket that have one; a bucket without any
    holds the previous value, so an outage never reads as a latency drop), ``failed`` (share
    0-1 of the bucket's points that had failed samples) and ``fault`` (True inside the fault
    window; an instant fault, shorter than one bucket, marks the bucket at t = 0 only).
    None when there is no point with a time.
    """
    points = sorted((p for p in points or [] if isinstance(p, dict) and _is_number(p.get('t'))),
                    key=lambda p: float(p['t']))
    if not points:
        return None
    first, last = float(points[0]['t']), float(points[-1]['t'])
    count = max(1, min(int(buckets), len(points)))
    step = (last - first) / (count - 1) if count > 1 else 0.0
    times = [first + index * step for index in range(count)]
    groups = [[] for _time in times]
    for point in points:
        index = int(round((float(point['t']) - first) / step)) if step else 0
        groups[min(max(index, 0), count - 1)].append(point)

    latency, failed, fault = [], [], []
    held = None
    for time_at, group in zip(times, groups):
        values = [float(p['latency_ms']) for p in group if _is_number(p.get('latency_ms'))]
        if values:
            held = sum(values) / len(values)
        latency.append(held)
        failed.append(sum(1 for p in group if p.get('ok') is False) / float(len(group)) if group else 0.0)
        fault.append(time_at >= -step / 2.0 and (fault_end is None or time_at <= fault_end + step / 2.0)
                     if step else True)
    first_known = next((value for value in latency if value is not None), 0.0)
    latency = [first_known if value is None else value for value in latency]
    instant = fault_end is not None and step and fault_end < step
    if instant:
        nearest = min(range(count), key=lambda index: abs(times[index]))
        fault = [index == nearest for index in range(count)]
    return {'times': times, 'step': step, 'latency': latency, 'failed': failed, 'fault': fault,
            'instant': bool(instant)}


def timeline_chart(record):
    """A mermaid xychart of the probe timeline, or None when the record has no timeline.

    The x-axis is numeric (seconds from the fault start) over evenly resampled points, so
    mermaid draws a few readable ticks instead of one label per point. Three named series
    (a legend where mermaid draws one; the palette is fixed in the chart's front matter):
    the fault window as a light band of full-height bars, failed samples as red bars whose
    height is the share of failed samples at that time, and the latency of the successful
    samples as a blue line. An instant fault (a crash) is one band at t = 0.
    """
    fault_end = _fault_end_relative(record)
    sampled = resample_timeline(record.get('timeline'), fault_end)
    if sampled is None:
        return None
    y_max = _nice_ceiling(max(sampled['latency'] + [1.0]) * 1.2)
    # mermaid draws a bar of value 0 as a stub as high as the axis padding, which would paint a
    # red strip along the x-axis; a value below the axis range draws no bar at all.
    no_bar = -y_max
    values = {
        'fault': [y_max if inside else no_bar for inside in sampled['fault']],
        'failed': [y_max * share if share > 0 else no_bar for share in sampled['failed']],
        'latency': sampled['latency'],
    }
    if sampled['instant']:
        window = 'instant fault at 0 s'
    elif fault_end is not None:
        window = 'fault 0 s to %s s' % fmt_number(fault_end)
    else:
        window = 'fault from 0 s'
    title = '%s - %s' % (mermaid_text(record.get('name') or 'experiment', 48), window)
    times = sampled['times']
    x_min, x_max = times[0], times[-1]
    if x_max <= x_min:
        x_min, x_max = x_min - 1, x_min + 1

    def series(numbers):
        return '[%s]' % ', '.join(fmt_number(float(v)) for v in numbers)

    lines = [
        '---',
        'config:',
        '  xyChart:',
        '    width: 900',
        '    height: 400',
        '    showLegend: true',
        '  themeVariables:',
        '    xyChart:',
        '      plotColorPalette: "%s"' % ', '.join(colour for _key, _label, _kind, colour in CHART_SERIES),
        '---',
        'xychart-beta',
        '    title "%s"' % title,
        '    x-axis "seconds from fault start" %s --> %s' % (fmt_number(float(x_min)), fmt_number(float(x_max))),
        '    y-axis "latency (ms)" 0 --> %s' % fmt_number(float(y_max)),
    ]
    for key, label, kind, _colour in CHART_SERIES:
        lines.append('    %s "%s" %s' % (kind, label, series(values[key])))
    return Markup('\n'.join(lines))


def experiment_view(record):
    metrics = record.get('metrics') or {}
    targets = _get(record, 'slo', 'targets') or {}
    checks = _checks_by_metric(record)
    rows = []
    # An experiment that errored or was aborted did not run as planned: its numbers are shown as
    # observed, never marked as passing (or failing) an SLO.
    judged = experiment_outcome(record) not in ('ERROR', 'ABORTED')
    for metric_key, target_key, label, unit, op in METRICS:
        check = checks.get(metric_key, {})
        value = metrics.get(metric_key, check.get('value'))
        target = targets.get(target_key, check.get('target'))
        passed = check.get('passed') if judged and isinstance(check.get('passed'), bool) else None
        rows.append({
            'metric': metric_key,
            'label': label,
            'value': _metric_value_text(metric_key, value, unit, metrics),
            'target': '%s %s' % (op_text(check.get('op') or op), fmt_number(target, unit)) if target is not None else 'n/a',
            'passed': passed,
            'expected': bool(check.get('expected')),
            'mark': _mark(passed, check.get('expected')),
        })
    outcome = experiment_outcome(record)
    fault = record.get('fault') or {}
    probe = record.get('probe') or {}
    return {
        'name': plain_text(record.get('name') or 'unnamed experiment'),
        'type': plain_text(record.get('type')),
        'intensity': plain_text(record.get('intensity')),
        'environment': plain_text(record.get('environment')),
        'inventory': plain_text(record.get('inventory')),
        'targets': ', '.join(plain_text(t, 80) for t in (record.get('targets') or [])),
        'target_url': plain_text(record.get('target_url')),
        'status': plain_text(record.get('status')),
        'outcome': outcome,
        'mark': {'PASS': MARK_PASS, 'SKIPPED': MARK_NONE, 'DRY RUN': MARK_NONE}.get(outcome, MARK_FAIL),
        'reason': plain_text(record.get('reason')),
        'score': fmt_number(_get(record, 'slo', 'score')),
        'module': plain_text(fault.get('module')),
        'parameters': ', '.join('%s=%s' % (plain_text(k, 40), plain_text(json.dumps(v, sort_keys=True), 80))
                                for k, v in sorted((fault.get('parameters') or {}).items())),
        # The backend a fault module chose on each host (chaos_netem's backend=auto: tc or nfqueue).
        'backend': ', '.join(sorted(set(plain_text((r.get('details') or {}).get('backend'), 40)
                                        for r in fault.get('results') or [] if (r.get('details') or {}).get('backend')))),
        'fault_window': _fault_window_text(record),
        'samples': ('%s of %s failed' % (fmt_number(metrics.get('samples_failed')), fmt_number(metrics.get('samples_total')))
                    if _is_number(metrics.get('samples_total')) else 'n/a'),
        'availability': fmt_number(metrics.get('availability_percent'), '%'),
        'probe_load': probe_load_text(metrics),
        'latency_baseline_p95': fmt_number(_get(metrics, 'latency_ms', 'baseline', 'p95'), 'ms'),
        'latency_fault_p95': fmt_number(_get(metrics, 'latency_ms', 'fault', 'p95'), 'ms'),
        'metrics': rows,
        'violations': [_violation_view(c, record) for c in failed_checks(record)],
        'expected_violations': [_violation_view(c, record) for c in expected_checks(record)],
        'chart': timeline_chart(record),
        'probe': ('every %s s, timeout %s s' % (fmt_number(probe.get('interval')), fmt_number(probe.get('timeout')))
                  if _is_number(probe.get('interval')) else 'n/a'),
        'hosts': hosts_view(record),
        'spread': fmt_number(fault.get('injection_spread'), 's'),
        'note': plain_text(record.get('note')),
        'chart_instant': bool((resample_timeline(record.get('timeline'), _fault_end_relative(record)) or {}).get('instant')),
    }


def _host_window(injected, reverted, start):
    if not (_is_number(injected) and _is_number(start)):
        return 'n/a'
    end = fmt_number(float(reverted) - float(start)) if _is_number(reverted) else '?'
    return '%s s to %s s' % (fmt_number(float(injected) - float(start)), end)


def hosts_view(record):
    """One row per target host: its fault window relative to the experiment's fault start (in the
    controller's clock), how long it held against the plan, and how it ended."""
    start = _get(record, 'window', 'fault_start')
    planned = _get(record, 'fault', 'planned_duration')
    rows = []
    for part in record.get('hosts') or []:
        if not isinstance(part, dict):
            continue
        injected, reverted, held = part.get('injected_at'), part.get('reverted_at'), part.get('held_seconds')
        ended = part.get('ended') or ('not injected' if injected is None else 'unknown')
        normal = ended in ('deadline', 'revert', 'instant') and part.get('status') != 'failed'
        reason = part.get('reason')
        slack = part.get('start_slack')
        if _is_number(slack) and float(slack) < 0:
            # the controller reached this host after the common start: it injected late by that much
            late = 'ready %s after the common start (chaos_experiment_inject_lead_per_host, forks)' % fmt_number(-float(slack), 's')
            reason = '%s; %s' % (reason, late) if reason else late
        rows.append({
            'host': plain_text(part.get('host'), 80),
            'window': _host_window(injected, reverted, start),
            'held': ('%s of %s' % (fmt_number(held, 's'), fmt_number(planned, 's')) if _is_number(held)
                     else 'n/a'),
            'ended': plain_text(ended, 40),
            'mark': MARK_PASS if normal else MARK_FAIL,
            'offset': fmt_number(part.get('clock_offset'), 's'),
            'reason': plain_text(reason, 300),
        })
    return rows


# ---------------------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------------------

def _slo_tables(records):
    tables = []
    seen = []
    for record in records:
        targets = _get(record, 'slo', 'targets')
        if not isinstance(targets, dict) or not targets:
            continue
        key = (record.get('environment'), json.dumps(targets, sort_keys=True, default=str))
        if key in seen:
            continue
        seen.append(key)
        rows = []
        for metric_key, target_key, label, unit, op in METRICS:
            if target_key in targets:
                rows.append({'label': label, 'metric': metric_key, 'op': op_text(op), 'target': fmt_number(targets[target_key], unit)})
        tables.append({'environment': plain_text(record.get('environment') or 'unspecified'), 'rows': rows})
    return tables


def overall_verdict(outcomes, dry_run):
    if any(o in ('FAIL', 'ABORTED', 'ERROR') for o in outcomes):
        return 'FAIL'
    if dry_run:
        return 'DRY RUN'
    if any(o == 'PASS' for o in outcomes):
        return 'PASS'
    return 'NO EXPERIMENTS'


def _unique(values):
    result = []
    for value in values:
        if value not in (None, '') and value not in result:
            result.append(value)
    return result


def _start_time(record):
    """Sort key: experiments in the order they ran; records without times (skipped) last."""
    for value in (_get(record, 'window', 'baseline_start'), _get(record, 'window', 'fault_start'),
                  _get(record, 'fault', 'started_at')):
        if _is_number(value):
            return float(value)
    return float('inf')


def build_report(records, run=None, title='Chaos experiment report'):
    """Build the view model from experiment records and run metadata (both plain dicts).

    records are redacted here, so nothing secret reaches any renderer, and ordered by start
    time (records without one keep their order, at the end). run may carry:
    playbooks, inventories, check_mode, started_at, ended_at (ISO strings),
    duration_seconds, ansible_version.
    """
    records = sorted((redact(r) for r in records if isinstance(r, dict)), key=_start_time)
    run = redact(dict(run or {}))
    experiments = [experiment_view(r) for r in records]
    outcomes = [e['outcome'] for e in experiments]
    dry_run = bool(run.get('check_mode')) or 'DRY RUN' in outcomes
    counts = {
        'total': len(experiments),
        'passed': outcomes.count('PASS'),
        'violated': outcomes.count('FAIL'),
        'aborted': outcomes.count('ABORTED'),
        'failed': outcomes.count('ERROR'),
        'skipped': outcomes.count('SKIPPED'),
        'dry_run': outcomes.count('DRY RUN'),
    }
    run['environments'] = _unique([r.get('environment') for r in records])
    run['inventories'] = _unique(list(run.get('inventories') or []) + [r.get('inventory') for r in records])
    if run.get('playbooks'):
        run['command'] = ' '.join(['ansible-playbook'] + list(run['playbooks'])
                                  + ['-i %s' % inventory for inventory in run['inventories']]
                                  + (['--check'] if run.get('check_mode') else []))
    return {
        'schema': REPORT_SCHEMA,
        'title': plain_text(title),
        'verdict': overall_verdict(outcomes, dry_run),
        'dry_run': dry_run,
        'run': run,
        'counts': counts,
        'slo_tables': _slo_tables(records),
        'experiments': experiments,
        'ran': [e for e in experiments if e['outcome'] not in ('SKIPPED',)],
        'skipped': [e for e in experiments if e['outcome'] == 'SKIPPED'],
        'violated': [e for e in experiments if e['outcome'] in ('FAIL', 'ABORTED', 'ERROR')],
        'expected': [e for e in experiments if e['expected_violations']],
        'records': records,
    }


def _finalize(value):
    """Every `{{ }}` in the template is Markdown-escaped unless it is Markup (the `safe` filter)."""
    if value is None:
        return ''
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return md_escape(value, limit=0)


def load_default_template():
    with open(DEFAULT_TEMPLATE_PATH, 'r') as template_file:
        return template_file.read()


def render_markdown(report, template_text=None):
    """Render the report view model through a Jinja2 template (the shipped one when None).

    Expressions are escaped for Markdown automatically; the template gets the view model as
    `report` and the helpers `md` (escape), `text` (escape, `marked` spans as code), `num`
    (format a number), `code` and the marks.
    """
    if template_text is None:
        template_text = load_default_template()
    env = SandboxedEnvironment(finalize=_finalize, undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters['md'] = lambda value: Markup(md_escape(value, limit=0))
    env.filters['num'] = fmt_number
    env.filters['code'] = md_code
    env.filters['text'] = md_text
    template = env.from_string(template_text)
    return template.render(report=report, marks={'pass': MARK_PASS, 'fail': MARK_FAIL, 'none': MARK_NONE,
                                                 'expected': MARK_EXPECTED})


def render_json(report):
    """chaos_results.json: the run metadata, the summary and the full (redacted) records."""
    document = {
        'schema': report['schema'],
        'run': report['run'],
        'summary': {'verdict': report['verdict'], 'dry_run': report['dry_run'], 'counts': report['counts']},
        'experiments': report['records'],
    }
    return json.dumps(document, indent=2, sort_keys=True, default=str) + '\n'


def _case_time(record):
    window = record.get('window') or {}
    start = window.get('baseline_start', window.get('fault_start'))
    end = window.get('observe_end', window.get('fault_end'))
    if _is_number(start) and _is_number(end) and end >= start:
        return '%.3f' % (end - start)
    return '0'


def render_junit(report):
    """junit.xml: one testsuite, one testcase per experiment.

    SLO violations and aborted experiments are <failure>, failed experiments <error>,
    skipped and dry-run experiments <skipped>.
    """
    counts = report['counts']
    suite = ET.Element('testsuite', {
        'name': 'magsasa.chaos',
        'tests': str(counts['total']),
        'failures': str(counts['violated'] + counts['aborted']),
        'errors': str(counts['failed']),
        'skipped': str(counts['skipped'] + counts['dry_run']),
        'timestamp': xml_text(report['run'].get('started_at')),
        'time': '%.3f' % float(report['run'].get('duration_seconds') or 0),
    })
    for record, view in zip(report['records'], report['experiments']):
        case = ET.SubElement(suite, 'testcase', {
            'name': xml_text(view['name']),
            'classname': xml_text('chaos.%s.%s' % (view['environment'] or 'default', view['type'] or 'unknown')),
            'time': _case_time(record),
        })
        outcome = view['outcome']
        if outcome in ('SKIPPED', 'DRY RUN'):
            ET.SubElement(case, 'skipped', {'message': xml_text(view['reason'] or outcome.lower())})
        elif outcome == 'ERROR':
            error = ET.SubElement(case, 'error', {'message': xml_text(view['reason'] or 'experiment failed'),
                                                  'type': 'experiment_error'})
            error.text = xml_text(view['reason'])
        elif outcome in ('FAIL', 'ABORTED'):
            violations = [v['text'] for v in view['violations']]
            if outcome == 'ABORTED':
                message = 'aborted: %s' % (view['reason'] or 'stop condition hit')
            else:
                message = 'SLO violated: %s' % '; '.join(violations)
            failure = ET.SubElement(case, 'failure', {
                'message': xml_text(message), 'type': 'aborted' if outcome == 'ABORTED' else 'slo_violation'})
            failure.text = xml_text('\n'.join(violations) or view['reason'])
        output = ET.SubElement(case, 'system-out')
        output.text = xml_text('\n'.join('%s: %s (target %s)' % (m['label'], m['value'], m['target'])
                                         for m in view['metrics']))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding='unicode') + '\n'


def one_line_summary(report, report_path=None):
    """A single terminal line: verdict, counts, the violations and where the report is."""
    counts = report['counts']
    parts = ['%d experiment%s' % (counts['total'], '' if counts['total'] == 1 else 's'),
             '%d passed' % counts['passed'],
             '%d violated SLOs' % counts['violated']]
    if counts['aborted']:
        parts.append('%d aborted' % counts['aborted'])
    if counts['failed']:
        parts.append('%d failed' % counts['failed'])
    if counts['skipped']:
        parts.append('%d skipped' % counts['skipped'])
    if counts['dry_run']:
        parts.append('%d dry run' % counts['dry_run'])
    line = 'chaos_report: %s - %s' % (report['verdict'], ', '.join(parts))
    details = []
    for view in report['violated']:
        what = '; '.join(v['text'] for v in view['violations']) or view['reason'] or view['outcome'].lower()
        details.append('%s (%s)' % (view['name'], what))
    if details:
        line += ' | ' + ' | '.join(details)
    if report_path:
        line += ' | report: %s' % report_path
    return plain_text(line, limit=2000)
