# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Resilience metrics: pure functions of probe samples and a fault window.

This is the one place where every number in a chaos report is defined. The
report, the filters and the ``resilience_probe`` module all call these
functions; nothing else computes a metric.

Inputs
------
sample
    A dict with at least ``ok`` (bool) and a time: ``sent`` (epoch seconds the
    request actually left), falling back to ``scheduled`` (its slot on the
    probe's fixed timeline). ``latency_ms``, ``status`` and ``error`` are
    carried along. The *time of a sample* is ``sent`` when present, else
    ``scheduled``. Samples may arrive in any order; they are sorted by time
    (then by ``seq``) before anything is computed.
fault window
    ``fault_start`` and ``fault_end`` (epoch seconds) bound the injected fault.
    ``baseline_start`` optionally bounds the baseline from below and
    ``observe_end`` bounds the observation after the fault from above.
    Missing bounds are open: without ``fault_start`` the whole series is the
    chaos window and the baseline is empty.

Windows
-------
baseline
    samples with ``baseline_start <= t < fault_start``.
fault
    samples with ``fault_start <= t < fault_end``.
chaos window
    samples with ``fault_start <= t <= observe_end`` (the fault plus the
    observation after it).

Metrics (keys of the ``metrics`` record section)
------------------------------------------------
samples_total / samples_failed
    number of samples / failed samples in the chaos window.
availability_percent
    ``100 * ok samples / samples`` in the chaos window; null without samples.
error_rate_percent
    ``100 * failed samples / samples`` in the chaos window; null without samples.
latency_ms.baseline / latency_ms.fault
    p50, p95 and p99 of ``latency_ms`` over the *successful* samples of the
    baseline / fault window (a failed request's latency is the time it took to
    fail, not a service latency). Percentiles interpolate linearly between
    closest ranks. Null when the window has no successful sample.
latency_degradation_ms
    ``p95(fault) - p95(baseline)``; null when either is null (for example an
    empty baseline).
outages
    maximal runs of consecutive failed samples in the chaos window. ``start``
    is the time of the run's first failed sample, ``end`` the time of the next
    successful sample and ``duration_seconds = end - start``. A run that has no
    successful sample after it is ``open: true`` with ``end: null`` and a
    duration up to its last failed sample (a lower bound).
mttr_seconds
    mean ``duration_seconds`` of the closed outages; null when no outage
    closed.
time_to_first_failure_seconds
    time of the first failed sample in the chaos window minus ``fault_start``
    (minus the window's first sample time without a fault window); null when
    no sample failed.
recovery_seconds / recovered
    the first sample at or after ``fault_end`` that begins a run of K
    (``recovery_samples``, default 3) successful samples in a row;
    ``recovery_seconds = max(0, its time - fault_end)``. ``recovered`` is false
    and ``recovery_seconds`` null when no such run exists, or it starts later
    than ``recovery_timeout`` seconds after ``fault_end``. Both are null when
    ``fault_end`` is unknown.

SLO checks (``slo`` record section)
-----------------------------------
Targets and the metric each one checks:

================================  ==============================  ====
target                            metric                          op
================================  ==============================  ====
mttr_seconds                      mttr_seconds                    <=
max_error_rate_percent            error_rate_percent              <=
min_availability_percent          availability_percent            >=
max_latency_degradation_ms        latency_degradation_ms          <=
max_recovery_seconds              recovery_seconds                <=
================================  ==============================  ====

A null value passes or fails by the metric's rule:

* mttr_seconds null: passes when no outage is open (no outage, nothing to
  repair); an outage still open at the end fails the check whatever the mean.
* error_rate_percent / availability_percent null: fails (no evidence).
* latency_degradation_ms null: passes (not measurable, for example an empty
  baseline; the error-rate and availability checks judge a dead service).
* recovery_seconds null: fails when ``recovered`` is false, passes when
  recovery was not measured (``recovered`` null).

The verdict is ``pass`` when every check passes, otherwise ``fail``.

Resilience score (0..100)
-------------------------
Each check gets a sub-score from how much of its budget the value used, where
the budget of an upper-bound target T is T and the budget of
``min_availability_percent`` A is the allowed unavailability ``100 - A``::

    used     = value / T                (availability: (100 - value) / (100 - A))
    subscore = 100 * clamp(1 - used / 2, 0, 1)

So a perfect value scores 100, a value exactly at its target 50 and twice the
target 0; a passed check scores at least 50 and a failed one at most 49.9 (an
MTTR check failed by an open outage is capped there too). A zero budget scores
100 when the value is within it and 0 otherwise. A null value scores 100 when
its check passed and 0 when it failed. The resilience score is
the mean of the sub-scores, rounded to one decimal; null when there are no
targets.

Stop conditions
---------------
``evaluate_stop_condition`` answers "should the experiment abort?" over the
samples since a start time. It is breached when, at any point:

* the error rate over the last ``window`` samples (only once ``window``
  samples exist) exceeds ``max_error_rate_percent`` *and* that window holds
  at least two failures, or
* ``max_consecutive_failures`` (at least 2) samples in a row failed.

A single failed sample therefore never breaches a stop condition.
"""

import json
import math

from ansible_collections.magsasa.chaos.plugins.module_utils._catalog import SLO_METRICS, STOP_CONDITION_MINIMUM


# (target key, metric key, operator), from the one list in _catalog
SLO_TARGETS = tuple((target, metric, op) for target, metric, op, dummy, dummy in SLO_METRICS)

DEFAULT_RECOVERY_SAMPLES = 3
TIMELINE_MAX_POINTS = 60


class MetricsError(ValueError):
    """Raised for input that cannot be turned into metrics (names the field and value)."""


def _round(value, digits):
    return None if value is None else round(float(value), digits)


def sample_time(sample):
    """Time of a sample: ``sent`` when present, else ``scheduled``."""
    value = sample.get('sent')
    if value is None:
        value = sample.get('scheduled')
    return value


def normalize_samples(samples):
    """Validate samples and return them sorted by time (then ``seq``)."""
    if samples is None:
        return []
    if not isinstance(samples, (list, tuple)):
        raise MetricsError('samples must be a list of dicts, got %s' % type(samples).__name__)
    checked = []
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise MetricsError('samples[%d] must be a dict, got %r' % (index, sample))
        when = sample_time(sample)
        if not isinstance(when, (int, float)) or isinstance(when, bool):
            raise MetricsError("samples[%d] needs a numeric 'sent' or 'scheduled' time, got %r" % (index, when))
        if not isinstance(sample.get('ok'), bool):
            raise MetricsError("samples[%d] needs a boolean 'ok', got %r" % (index, sample.get('ok')))
        checked.append(sample)
    return sorted(checked, key=lambda s: (sample_time(s), s.get('seq', 0)))


def load_samples_file(path, growing=False):
    """Read a JSONL samples file; a truncated or corrupt line is an error naming the line.

    With ``growing`` (the sampler is still writing) a last line without its newline is a
    sample being written, not damage, and is left for the next read.
    """
    samples = []
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise MetricsError('cannot read samples file %s: %s' % (path, exc))
    lines = data.split(b'\n')
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        truncated = number == len(lines)
        if truncated and growing:
            break
        try:
            sample = json.loads(raw.decode('utf-8'))
        except ValueError as exc:
            kind = 'truncated' if truncated else 'corrupt'
            raise MetricsError('samples file %s is %s at line %d: %s' % (path, kind, number, exc))
        if not isinstance(sample, dict):
            raise MetricsError('samples file %s is corrupt at line %d: expected a JSON object, got %r' % (path, number, sample))
        if truncated:
            raise MetricsError('samples file %s is truncated at line %d: the last line has no newline' % (path, number))
        samples.append(sample)
    try:
        return normalize_samples(samples)
    except MetricsError as exc:
        raise MetricsError('samples file %s is corrupt: %s' % (path, exc))


def percentile(values, pct):
    """Percentile with linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_percentiles(samples):
    """p50/p95/p99 of latency_ms over the successful samples given."""
    values = [s['latency_ms'] for s in samples if s.get('ok') and isinstance(s.get('latency_ms'), (int, float))]
    return dict((name, _round(percentile(values, pct), 2)) for name, pct in (('p50', 50), ('p95', 95), ('p99', 99)))


def _between(samples, start, end, include_end):
    selected = []
    for sample in samples:
        when = sample_time(sample)
        if start is not None and when < start:
            continue
        if end is not None and (when > end or (when == end and not include_end)):
            continue
        selected.append(sample)
    return selected


def find_outages(samples):
    """Maximal runs of failed samples in already sorted samples (see the module docs)."""
    outages = []
    run_start = None
    last_failed = None
    for sample in samples:
        when = sample_time(sample)
        if not sample['ok']:
            if run_start is None:
                run_start = when
            last_failed = when
        elif run_start is not None:
            outages.append({'start': run_start, 'end': when,
                            'duration_seconds': _round(when - run_start, 3), 'open': False})
            run_start = None
    if run_start is not None:
        outages.append({'start': run_start, 'end': None,
                        'duration_seconds': _round(last_failed - run_start, 3), 'open': True})
    return outages


def recovery(samples, fault_end, recovery_samples=DEFAULT_RECOVERY_SAMPLES, recovery_timeout=None):
    """Return (recovery_seconds, recovered) for already sorted samples."""
    if fault_end is None:
        return None, None
    after = [s for s in samples if sample_time(s) >= fault_end]
    streak = 0
    for index, sample in enumerate(after):
        streak = streak + 1 if sample['ok'] else 0
        if streak == recovery_samples:
            first = after[index - recovery_samples + 1]
            seconds = max(0.0, sample_time(first) - fault_end)
            if recovery_timeout is not None and seconds > recovery_timeout:
                return None, False
            return _round(seconds, 3), True
    return None, False


def _number(name, value, minimum=0):
    """``value`` as a number (numeric strings from ``-e`` or templating are accepted); None stays None."""
    if value is None:
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if not isinstance(number, (int, float)) or isinstance(number, bool) or math.isnan(number) or number < minimum:
        if minimum == float('-inf'):
            raise MetricsError('%s must be a number (epoch seconds), got %r' % (name, value))
        raise MetricsError('%s must be a number >= %s, got %r' % (name, minimum, value))
    return number


def _integer(name, value, minimum, hint=''):
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    if not isinstance(number, int) or isinstance(number, bool) or number < minimum:
        raise MetricsError('%s must be an integer >= %d%s, got %r' % (name, minimum, hint, value))
    return number


def compute_metrics(samples, fault_start=None, fault_end=None, observe_end=None, baseline_start=None,
                    recovery_samples=DEFAULT_RECOVERY_SAMPLES, recovery_timeout=None):
    """Compute the ``metrics`` record section (see the module docs for every definition)."""
    fault_start = _number('fault_start', fault_start, float('-inf'))
    fault_end = _number('fault_end', fault_end, float('-inf'))
    observe_end = _number('observe_end', observe_end, float('-inf'))
    baseline_start = _number('baseline_start', baseline_start, float('-inf'))
    if fault_start is not None and fault_end is not None and fault_end < fault_start:
        raise MetricsError('fault_end must not be before fault_start, got fault_start=%r fault_end=%r'
                           % (fault_start, fault_end))
    recovery_samples = _integer('recovery_samples', recovery_samples, 1)
    recovery_timeout = _number('recovery_timeout', recovery_timeout)

    ordered = normalize_samples(samples)
    baseline = _between(ordered, baseline_start, fault_start, False) if fault_start is not None else []
    chaos = _between(ordered, fault_start, observe_end, True)
    fault = _between(ordered, fault_start, fault_end if fault_end is not None else observe_end, fault_end is None)

    total = len(chaos)
    failed = sum(1 for s in chaos if not s['ok'])
    outages = find_outages(chaos)
    closed = [o['duration_seconds'] for o in outages if not o['open']]
    first_failure = next((sample_time(s) for s in chaos if not s['ok']), None)
    origin = fault_start if fault_start is not None else (sample_time(chaos[0]) if chaos else None)
    recovery_seconds, recovered = recovery(chaos, fault_end, recovery_samples, recovery_timeout)

    latency = {'baseline': latency_percentiles(baseline), 'fault': latency_percentiles(fault)}
    degradation = None
    if latency['baseline']['p95'] is not None and latency['fault']['p95'] is not None:
        degradation = _round(latency['fault']['p95'] - latency['baseline']['p95'], 2)

    return {
        'samples_total': total,
        'samples_failed': failed,
        'availability_percent': _round(100.0 * (total - failed) / total, 2) if total else None,
        'error_rate_percent': _round(100.0 * failed / total, 2) if total else None,
        'mttr_seconds': _round(sum(closed) / len(closed), 3) if closed else None,
        'recovery_seconds': recovery_seconds,
        'recovered': recovered,
        'time_to_first_failure_seconds': _round(first_failure - origin, 3) if first_failure is not None else None,
        'latency_degradation_ms': degradation,
        'latency_ms': latency,
        'outages': outages,
    }


def _subscore(value, target, op):
    if op == '>=':
        used, budget = 100.0 - value, 100.0 - target
    else:
        used, budget = value, target
    if budget <= 0:
        return 100.0 if used <= 0 else 0.0
    return 100.0 * min(1.0, max(0.0, 1.0 - used / budget / 2.0))


def _null_passes(metric, metrics):
    if metric == 'mttr_seconds':
        return not any(o.get('open') for o in metrics.get('outages') or [])
    if metric == 'recovery_seconds':
        return metrics.get('recovered') is not False
    return metric == 'latency_degradation_ms'


def validate_targets(targets):
    """Check SLO targets (known keys, numbers >= 0, availability 0-100); returns them as numbers."""
    if not isinstance(targets, dict):
        raise MetricsError('SLO targets must be a dict, got %r' % (targets,))
    known = [key for key, dummy, dummy in SLO_TARGETS]
    checked = {}
    for key, value in targets.items():
        if key not in known:
            raise MetricsError('unknown SLO target %r; known targets: %s' % (key, ', '.join(known)))
        checked[key] = _number(key, value)
        if key == 'min_availability_percent' and checked[key] is not None and checked[key] > 100:
            raise MetricsError('min_availability_percent must be 0-100, got %r' % (value,))
    return checked


def validate_expected(expected):
    """Check the names of expected violations (metric keys of the checks); returns them as a list."""
    if expected is None:
        return []
    if isinstance(expected, str) or not isinstance(expected, (list, tuple, set)):
        raise MetricsError('expected_violations must be a list of metric names, got %r' % (expected,))
    known = [metric for dummy, metric, dummy in SLO_TARGETS]
    for name in expected:
        if name not in known:
            raise MetricsError('expected_violations: unknown metric %r; known metrics: %s' % (name, ', '.join(known)))
    return list(expected)


def evaluate_slo(metrics, targets, expected=None):
    """Judge metrics against SLO targets; returns the ``slo`` record section.

    ``expected`` names metrics whose violation the experiment is known to cause (a database
    downtime on a single-database system cannot keep its error rate): a violated check of such a
    metric is marked ``expected`` and listed in ``expected_violations``, still shown, but it does
    not make the verdict ``fail``. Only the other violations do.
    """
    targets = validate_targets(targets)
    expected = validate_expected(expected)
    checks = []
    subscores = []
    for key, metric, op in SLO_TARGETS:
        target = targets.get(key)
        if target is None:
            continue
        value = metrics.get(metric)
        if value is None:
            passed = _null_passes(metric, metrics)
            subscore = 100.0 if passed else 0.0
        else:
            passed = value >= target if op == '>=' else value <= target
            if metric == 'mttr_seconds' and not _null_passes(metric, metrics):
                passed = False
            subscore = _subscore(value, target, op) if passed else min(_subscore(value, target, op), 49.9)
        check = {'metric': metric, 'value': value, 'target': target, 'op': op, 'passed': passed}
        if not passed and metric in expected:
            check['expected'] = True
        checks.append(check)
        subscores.append(subscore)
    return {
        'targets': dict(targets),
        'checks': checks,
        'verdict': 'pass' if all(c['passed'] or c.get('expected') for c in checks) else 'fail',
        'expected_violations': [c['metric'] for c in checks if c.get('expected')],
        'score': round(sum(subscores) / len(subscores), 1) if subscores else None,
    }


def evaluate_stop_condition(samples, window=20, max_error_rate_percent=None, max_consecutive_failures=None, since=None):
    """Whether an abort threshold was breached at any point since ``since`` (see the module docs)."""
    window = _integer('window', window, STOP_CONDITION_MINIMUM['window'])
    max_error_rate_percent = _number('max_error_rate_percent', max_error_rate_percent)
    since = _number('since', since, float('-inf'))
    if max_error_rate_percent is not None and max_error_rate_percent > 100:
        raise MetricsError('max_error_rate_percent must be 0-100, got %r' % (max_error_rate_percent,))
    if max_consecutive_failures is not None:
        max_consecutive_failures = _integer('max_consecutive_failures', max_consecutive_failures,
                                            STOP_CONDITION_MINIMUM['max_consecutive_failures'],
                                            ' (a single blip must not abort)')
    ordered = _between(normalize_samples(samples), since, None, True)
    reasons = []
    breached_at = None
    streak = longest = 0
    failures_in_window = 0
    worst_rate = 0.0
    rate_breached = streak_breached = False
    for index, sample in enumerate(ordered):
        failed = not sample['ok']
        failures_in_window += 1 if failed else 0
        if index >= window and not ordered[index - window]['ok']:
            failures_in_window -= 1
        streak = streak + 1 if failed else 0
        longest = max(longest, streak)
        when = sample_time(sample)
        if index + 1 >= window:
            rate = 100.0 * failures_in_window / window
            worst_rate = max(worst_rate, rate)
            if (max_error_rate_percent is not None and not rate_breached and failures_in_window >= 2
                    and rate > max_error_rate_percent):
                rate_breached = True
                breached_at = when if breached_at is None else breached_at
                reasons.append('error rate %.1f%% over %d samples exceeded max_error_rate_percent %s at %.3f'
                               % (rate, window, max_error_rate_percent, when))
        if max_consecutive_failures is not None and not streak_breached and streak >= max_consecutive_failures:
            streak_breached = True
            breached_at = when if breached_at is None else breached_at
            reasons.append('%d consecutive failed samples reached max_consecutive_failures %d at %.3f'
                           % (streak, max_consecutive_failures, when))
    last = ordered[-window:]
    return {
        'breached': bool(reasons),
        'breached_at': breached_at,
        'reasons': reasons,
        'samples_evaluated': len(ordered),
        'window_error_rate_percent': _round(100.0 * sum(1 for s in last if not s['ok']) / len(last), 2) if last else None,
        'worst_window_error_rate_percent': _round(worst_rate, 2) if len(ordered) >= window else None,
        'consecutive_failures': streak,
        'longest_failure_streak': longest,
    }


def summarize(samples):
    """Counts and latency percentiles of a series (for probe status and steady-state checks)."""
    ordered = normalize_samples(samples)
    total = len(ordered)
    failed = sum(1 for s in ordered if not s['ok'])
    return {
        'samples_total': total,
        'samples_ok': total - failed,
        'samples_failed': failed,
        'error_rate_percent': _round(100.0 * failed / total, 2) if total else None,
        'availability_percent': _round(100.0 * (total - failed) / total, 2) if total else None,
        'latency_ms': latency_percentiles(ordered),
        'first_sample_at': sample_time(ordered[0]) if ordered else None,
        'last_sample_at': sample_time(ordered[-1]) if ordered else None,
    }


def timeline(samples, fault_start=None, max_points=TIMELINE_MAX_POINTS):
    """Downsample a series to at most ``max_points`` points for the report chart.

    The series is cut into equal time buckets; a point's ``t`` is the bucket's
    first sample time relative to ``fault_start`` (or to the first sample),
    ``latency_ms`` the mean latency of its successful samples (null when none
    succeeded) and ``ok`` is false when any sample in it failed, so that no
    outage disappears in the downsampling.
    """
    max_points = _integer('max_points', max_points, 1)
    fault_start = _number('fault_start', fault_start, float('-inf'))
    ordered = normalize_samples(samples)
    if not ordered:
        return []
    first, last = sample_time(ordered[0]), sample_time(ordered[-1])
    origin = fault_start if fault_start is not None else first
    width = (last - first) / max_points if last > first else 1.0
    buckets = {}
    for sample in ordered:
        index = min(int((sample_time(sample) - first) / width), max_points - 1)
        buckets.setdefault(index, []).append(sample)
    points = []
    for index in sorted(buckets):
        bucket = buckets[index]
        latencies = [s['latency_ms'] for s in bucket if s['ok'] and isinstance(s.get('latency_ms'), (int, float))]
        points.append({
            't': _round(sample_time(bucket[0]) - origin, 3),
            'latency_ms': _round(sum(latencies) / len(latencies), 2) if latencies else None,
            'ok': all(s['ok'] for s in bucket),
        })
    return points
