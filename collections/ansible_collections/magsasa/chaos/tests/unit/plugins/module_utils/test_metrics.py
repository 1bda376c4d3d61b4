# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import random
import re

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils._metrics import (
    MetricsError, compute_metrics, evaluate_slo, evaluate_stop_condition, load_samples_file, percentile, summarize,
    timeline,
)

T0 = 1764440000.0
STEP = 0.1


def series(pattern, start=T0, step=STEP, latency=2.0):
    """Samples from a pattern: '.' healthy, 'x' failed; one sample per step from start."""
    samples = []
    for index, char in enumerate(pattern):
        when = start + index * step
        samples.append({'seq': index, 'scheduled': when, 'sent': when + 0.0005,
                        'latency_ms': latency if char == '.' else 1000.0, 'ok': char == '.',
                        'status': 200 if char == '.' else None, 'error': None if char == '.' else 'refused'})
    return samples


def at(index):
    return T0 + index * STEP


def window(baseline=10):
    """A fault window starting after `baseline` samples."""
    return at(baseline) - 0.01


SCENARIOS = [
    # id, pattern (10 baseline samples, then the chaos window), fault_end index, expected
    ('no failures', '.' * 10 + '.' * 30, 25,
     dict(samples_total=30, samples_failed=0, availability_percent=100.0, error_rate_percent=0.0, mttr_seconds=None,
          outages=0, recovered=True, time_to_first_failure_seconds=None)),
    ('all failures', '.' * 10 + 'x' * 30, 25,
     dict(samples_total=30, samples_failed=30, availability_percent=0.0, error_rate_percent=100.0, mttr_seconds=None,
          outages=1, recovered=False, recovery_seconds=None, time_to_first_failure_seconds=0.01)),
    ('one closed outage', '.' * 10 + '.' * 5 + 'x' * 12 + '.' * 13, 25,
     dict(samples_total=30, samples_failed=12, availability_percent=60.0, error_rate_percent=40.0, mttr_seconds=1.2,
          outages=1, recovered=True, recovery_seconds=0.2105, time_to_first_failure_seconds=0.5105)),
    ('two outages, mean', '.' * 10 + 'xx' + '.' * 5 + 'xxxx' + '.' * 19, 25,
     dict(samples_total=30, samples_failed=6, mttr_seconds=0.3, outages=2, recovered=True, recovery_seconds=0.0105)),
    ('outage still open at the end', '.' * 10 + '.' * 20 + 'x' * 10, 25,
     dict(samples_total=30, samples_failed=10, mttr_seconds=None, outages=1, recovered=True,
          time_to_first_failure_seconds=2.0105)),
]


@pytest.mark.parametrize('pattern, fault_end_index, expected', [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_compute_metrics_scenarios(pattern, fault_end_index, expected):
    metrics = compute_metrics(series(pattern), fault_start=window(), fault_end=at(fault_end_index) - 0.01)
    for key, value in expected.items():
        if key == 'outages':
            assert len(metrics['outages']) == value
        elif value is None or isinstance(value, bool):
            assert metrics[key] is value, key
        else:
            assert metrics[key] == pytest.approx(value, abs=1e-3), key


def test_outage_boundaries_are_first_failure_and_next_good_sample():
    metrics = compute_metrics(series('.' * 10 + '...' + 'xxxxx' + '....'), fault_start=window())
    outage = metrics['outages'][0]
    assert outage['start'] == pytest.approx(at(13) + 0.0005)
    assert outage['end'] == pytest.approx(at(18) + 0.0005)
    assert outage['duration_seconds'] == pytest.approx(0.5)
    assert outage['open'] is False
    assert metrics['mttr_seconds'] == pytest.approx(0.5)


def test_open_outage_is_reported_open_with_a_lower_bound():
    metrics = compute_metrics(series('.' * 10 + '..' + 'xxxx'), fault_start=window(), fault_end=at(14))
    assert metrics['outages'] == [{'start': pytest.approx(at(12) + 0.0005), 'end': None,
                                   'duration_seconds': pytest.approx(0.3), 'open': True}]
    assert metrics['mttr_seconds'] is None
    assert metrics['recovered'] is False


def test_empty_baseline_gives_null_degradation():
    samples = series('.' * 20)
    metrics = compute_metrics(samples, fault_start=T0 - 5, fault_end=at(10))
    assert metrics['latency_ms']['baseline'] == {'p50': None, 'p95': None, 'p99': None}
    assert metrics['latency_ms']['fault']['p95'] == pytest.approx(2.0)
    assert metrics['latency_degradation_ms'] is None


def test_no_fault_window_means_whole_series_and_no_baseline():
    metrics = compute_metrics(series('..xx..'))
    assert metrics['samples_total'] == 6
    assert metrics['latency_ms']['baseline']['p95'] is None
    assert metrics['time_to_first_failure_seconds'] == pytest.approx(0.2)
    assert metrics['recovered'] is None and metrics['recovery_seconds'] is None


def test_out_of_order_samples_are_sorted():
    ordered = series('.' * 10 + '...xxxx..x...' + '.' * 10)
    shuffled = list(ordered)
    random.Random(4).shuffle(shuffled)
    assert shuffled != ordered
    kwargs = dict(fault_start=window(), fault_end=at(20), recovery_samples=3)
    assert compute_metrics(shuffled, **kwargs) == compute_metrics(ordered, **kwargs)
    assert timeline(shuffled, fault_start=window()) == timeline(ordered, fault_start=window())


@pytest.mark.parametrize('after_fault, k, expected_index, recovered', [
    ('...', 3, 0, True),
    ('x.x..x...', 3, 6, True),
    ('x.x..x...', 2, 3, True),
    ('x.x..x...', 1, 1, True),
    ('x.x..x..', 3, None, False),
    ('xxxxxxxx', 1, None, False),
])
def test_recovery_needs_k_consecutive_healthy_samples(after_fault, k, expected_index, recovered):
    fault_end = at(15)
    samples = series('.' * 10 + 'xxxxx' + after_fault)
    metrics = compute_metrics(samples, fault_start=window(), fault_end=fault_end, recovery_samples=k)
    assert metrics['recovered'] is recovered
    if expected_index is None:
        assert metrics['recovery_seconds'] is None
    else:
        assert metrics['recovery_seconds'] == pytest.approx(at(15 + expected_index) + 0.0005 - fault_end, abs=1e-3)


def test_recovery_timeout_turns_a_late_recovery_into_not_recovered():
    samples = series('.' * 10 + 'x' * 20 + '.' * 5)
    late = compute_metrics(samples, fault_start=window(), fault_end=at(12), recovery_timeout=1.0)
    in_time = compute_metrics(samples, fault_start=window(), fault_end=at(12), recovery_timeout=2.0)
    assert (late['recovered'], late['recovery_seconds']) == (False, None)
    assert in_time['recovered'] is True and in_time['recovery_seconds'] == pytest.approx(1.8005, abs=1e-3)


def test_latency_percentiles_and_degradation():
    baseline = [{'sent': T0 + i * STEP, 'ok': True, 'latency_ms': float(i + 1)} for i in range(100)]
    fault = [{'sent': T0 + 20 + i * STEP, 'ok': True, 'latency_ms': float(i + 41)} for i in range(100)]
    failed = [{'sent': T0 + 30 + i * STEP, 'ok': False, 'latency_ms': 9999.0} for i in range(5)]
    metrics = compute_metrics(baseline + fault + failed, fault_start=T0 + 20, fault_end=T0 + 40)
    assert metrics['latency_ms']['baseline'] == {'p50': 50.5, 'p95': 95.05, 'p99': 99.01}
    assert metrics['latency_ms']['fault'] == {'p50': 90.5, 'p95': 135.05, 'p99': 139.01}
    assert metrics['latency_degradation_ms'] == pytest.approx(40.0)


@pytest.mark.parametrize('values, pct, expected', [
    ([], 50, None), ([7.0], 99, 7.0), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4], 100, 4), ([4, 1, 3, 2], 0, 1),
])
def test_percentile(values, pct, expected):
    assert percentile(values, pct) == expected


@pytest.mark.parametrize('pattern, kwargs, breached', [
    ('.' * 30 + 'x' + '.' * 30, dict(max_consecutive_failures=2, max_error_rate_percent=1), False),
    ('.x' * 30, dict(max_consecutive_failures=2), False),
    ('.' * 30 + 'xx' + '.' * 30, dict(max_consecutive_failures=2), True),
    ('.' * 30 + 'x.x.' + '.' * 30, dict(window=10, max_error_rate_percent=15), True),
    ('.' * 30 + 'x.x.' + '.' * 30, dict(window=10, max_error_rate_percent=20), False),
    ('x' + '.' * 5, dict(window=20, max_error_rate_percent=1), False),
    ('xxxx', dict(window=20, max_error_rate_percent=1), False),
    ('xxxx', dict(window=20, max_error_rate_percent=1, max_consecutive_failures=4), True),
    ('x' * 50, dict(), False),
])
def test_stop_condition(pattern, kwargs, breached):
    result = evaluate_stop_condition(series(pattern), **kwargs)
    assert result['breached'] is breached
    assert bool(result['reasons']) is breached
    assert (result['breached_at'] is not None) is breached


def test_single_blip_never_aborts_even_with_strict_thresholds():
    result = evaluate_stop_condition(series('.' * 5 + 'x' + '.' * 5), window=2, max_error_rate_percent=0,
                                     max_consecutive_failures=2)
    assert result['breached'] is False
    assert result['longest_failure_streak'] == 1
    with pytest.raises(MetricsError, match='max_consecutive_failures must be an integer >= 2'):
        evaluate_stop_condition(series('.'), max_consecutive_failures=1)


def test_stop_condition_since_ignores_earlier_failures():
    samples = series('xxxxx' + '.' * 20)
    assert evaluate_stop_condition(samples, max_consecutive_failures=3)['breached'] is True
    assert evaluate_stop_condition(samples, max_consecutive_failures=3, since=at(5))['breached'] is False


TARGETS = {'mttr_seconds': 30, 'max_error_rate_percent': 5, 'min_availability_percent': 95,
           'max_latency_degradation_ms': 500, 'max_recovery_seconds': 10}


def metrics_with(**overrides):
    metrics = {'mttr_seconds': 0.0, 'error_rate_percent': 0.0, 'availability_percent': 100.0,
               'latency_degradation_ms': 0.0, 'recovery_seconds': 0.0, 'recovered': True, 'outages': []}
    metrics.update(overrides)
    return metrics


@pytest.mark.parametrize('overrides, verdict, score, failed', [
    (dict(), 'pass', 100.0, []),
    # every value at its target: each check scores 50
    (dict(mttr_seconds=30, error_rate_percent=5, availability_percent=95, latency_degradation_ms=500,
          recovery_seconds=10), 'pass', 50.0, []),
    # mttr 15 of 30 -> 75; error 1 of 5 -> 90; availability 99 of budget 5 -> 90; degradation 250 of 500 -> 75;
    # recovery 2 of 10 -> 90  => mean 84
    (dict(mttr_seconds=15, error_rate_percent=1, availability_percent=99, latency_degradation_ms=250,
          recovery_seconds=2), 'pass', 84.0, []),
    (dict(error_rate_percent=7.5, availability_percent=92.5), 'fail', 70.0, ['error_rate_percent', 'availability_percent']),
    (dict(latency_degradation_ms=-20), 'pass', 100.0, []),
    (dict(latency_degradation_ms=None), 'pass', 100.0, []),
    (dict(mttr_seconds=None, outages=[{'open': True}]), 'fail', 80.0, ['mttr_seconds']),
    (dict(mttr_seconds=1.0, outages=[{'open': False}, {'open': True}]), 'fail', None, ['mttr_seconds']),
    (dict(recovery_seconds=None, recovered=False), 'fail', 80.0, ['recovery_seconds']),
    (dict(recovery_seconds=None, recovered=None), 'pass', 100.0, []),
    (dict(error_rate_percent=None, availability_percent=None), 'fail', 60.0,
     ['error_rate_percent', 'availability_percent']),
])
def test_slo_verdict_and_score(overrides, verdict, score, failed):
    slo = evaluate_slo(metrics_with(**overrides), TARGETS)
    assert slo['verdict'] == verdict
    assert [c['metric'] for c in slo['checks'] if not c['passed']] == failed
    assert len(slo['checks']) == 5
    assert slo['targets'] == TARGETS
    if score is not None:
        assert slo['score'] == pytest.approx(score)
    assert 0 <= slo['score'] <= 100
    if failed:
        assert slo['score'] < 100


def test_slo_check_shape_and_subset_of_targets():
    slo = evaluate_slo(metrics_with(mttr_seconds=1.3), {'mttr_seconds': 30})
    assert slo['checks'] == [{'metric': 'mttr_seconds', 'value': 1.3, 'target': 30, 'op': '<=', 'passed': True}]
    assert evaluate_slo(metrics_with(), {})['score'] is None


@pytest.mark.parametrize('targets, message', [
    ({'max_error_rate_percent': -1}, 'max_error_rate_percent must be a number >= 0, got -1'),
    ({'min_availability_percent': 101}, 'min_availability_percent must be 0-100, got 101'),
    ({'mttr': 3}, "unknown SLO target 'mttr'"),
])
def test_slo_bad_targets(targets, message):
    with pytest.raises(MetricsError, match=message):
        evaluate_slo(metrics_with(), targets)


@pytest.mark.parametrize('kwargs, message', [
    (dict(fault_start=T0 + 10, fault_end=T0), 'fault_end must not be before fault_start'),
    (dict(recovery_samples=0), 'recovery_samples must be an integer >= 1, got 0'),
    (dict(recovery_timeout=-1), 'recovery_timeout must be a number >= 0, got -1'),
])
def test_bad_window_arguments(kwargs, message):
    with pytest.raises(MetricsError, match=message):
        compute_metrics(series('...'), **kwargs)


@pytest.mark.parametrize('samples, message', [
    ([{'ok': True}], "samples\\[0\\] needs a numeric 'sent' or 'scheduled' time, got None"),
    ([{'sent': T0, 'ok': 'yes'}], "samples\\[0\\] needs a boolean 'ok', got 'yes'"),
    ('nope', 'samples must be a list of dicts, got str'),
])
def test_bad_samples(samples, message):
    with pytest.raises(MetricsError, match=message):
        compute_metrics(samples)


def test_timeline_is_downsampled_relative_and_keeps_outages():
    samples = series('.' * 500 + 'x' + '.' * 499, step=0.01)
    points = timeline(samples, fault_start=at(0) + 2.0)
    assert 1 < len(points) <= 60
    assert points[0]['t'] == pytest.approx(-2.0 + 0.0005, abs=1e-3)
    assert [p['ok'] for p in points].count(False) == 1
    assert all(p['latency_ms'] == 2.0 for p in points)
    assert timeline([], fault_start=T0) == []
    assert len(timeline(series('.' * 10), max_points=3)) == 3


def test_samples_file_round_trip_and_corruption(tmp_path):
    path = tmp_path / 'p.samples.jsonl'
    samples = series('..x.')
    path.write_text(''.join(json.dumps(s) + '\n' for s in reversed(samples)))
    assert load_samples_file(str(path)) == samples
    assert summarize(load_samples_file(str(path)))['samples_failed'] == 1

    path.write_text(json.dumps(samples[0]) + '\n' + json.dumps(samples[1])[:20])
    with pytest.raises(MetricsError, match='is truncated at line 2'):
        load_samples_file(str(path))

    path.write_text(json.dumps(samples[0]) + '\n{"garbage\n' + json.dumps(samples[1]) + '\n')
    with pytest.raises(MetricsError, match='is corrupt at line 2'):
        load_samples_file(str(path))

    path.write_text(json.dumps(samples[0]) + '\n[1, 2]\n')
    with pytest.raises(MetricsError, match='is corrupt at line 2: expected a JSON object'):
        load_samples_file(str(path))

    with pytest.raises(MetricsError, match='cannot read samples file'):
        load_samples_file(str(tmp_path / 'missing.jsonl'))


def test_numeric_strings_from_extra_vars_are_accepted():
    slo = evaluate_slo(metrics_with(mttr_seconds=1.0), {'mttr_seconds': '30', 'min_availability_percent': '99.5'})
    assert slo['targets'] == {'mttr_seconds': 30.0, 'min_availability_percent': 99.5}
    assert slo['verdict'] == 'pass'
    metrics = compute_metrics(series('.' * 10 + 'xx..'), fault_start=str(window()), recovery_samples='2')
    assert metrics['samples_total'] == 4 and metrics['mttr_seconds'] == pytest.approx(0.2)
    assert evaluate_stop_condition(series('xxx'), window='2', max_consecutive_failures='3')['breached'] is True


@pytest.mark.parametrize('call, message', [
    (lambda: evaluate_slo(metrics_with(), {'mttr_seconds': 'soon'}), "mttr_seconds must be a number >= 0, got 'soon'"),
    (lambda: evaluate_slo(metrics_with(), {'mttr_seconds': True}), 'mttr_seconds must be a number >= 0, got True'),
    (lambda: compute_metrics([], fault_start='now'), "fault_start must be a number \\(epoch seconds\\), got 'now'"),
    (lambda: evaluate_stop_condition([], window=0), 'window must be an integer >= 1, got 0'),
    (lambda: evaluate_stop_condition([], max_error_rate_percent=150), 'max_error_rate_percent must be 0-100, got 150'),
    (lambda: timeline([], max_points=0), 'max_points must be an integer >= 1, got 0'),
])
def test_bad_numbers_name_the_field_and_value(call, message):
    with pytest.raises(MetricsError, match=message):
        call()


def test_a_growing_file_leaves_the_sample_being_written_for_later(tmp_path):
    path = tmp_path / 'p.samples.jsonl'
    done = series('..')
    path.write_text(''.join(json.dumps(s) + '\n' for s in done) + json.dumps(series('...')[2])[:15])
    assert load_samples_file(str(path), growing=True) == done
    with pytest.raises(MetricsError, match='is truncated at line 3'):
        load_samples_file(str(path))


@pytest.mark.parametrize('overrides, expected, verdict, marked', [
    # a database downtime on a single database: errors and availability are expected to miss
    (dict(error_rate_percent=40.0, availability_percent=60.0), ['error_rate_percent', 'availability_percent'],
     'pass', ['error_rate_percent', 'availability_percent']),
    # only what was declared is forgiven
    (dict(error_rate_percent=40.0, availability_percent=60.0, recovery_seconds=25.0),
     ['error_rate_percent', 'availability_percent'], 'fail', ['error_rate_percent', 'availability_percent']),
    # a declared metric that held its target is not marked
    (dict(), ['error_rate_percent'], 'pass', []),
    (dict(error_rate_percent=40.0), [], 'fail', []),
    (dict(error_rate_percent=40.0), None, 'fail', []),
])
def test_slo_expected_violations(overrides, expected, verdict, marked):
    slo = evaluate_slo(metrics_with(**overrides), TARGETS, expected)
    assert slo['verdict'] == verdict
    assert slo['expected_violations'] == marked
    assert [c['metric'] for c in slo['checks'] if c.get('expected')] == marked
    assert all(not c['passed'] for c in slo['checks'] if c.get('expected'))


@pytest.mark.parametrize('expected, message', [
    (['errors'], "expected_violations: unknown metric 'errors'; known metrics: mttr_seconds, error_rate_percent"),
    ('error_rate_percent', "expected_violations must be a list of metric names, got 'error_rate_percent'"),
])
def test_slo_bad_expected_violations(expected, message):
    with pytest.raises(MetricsError, match=re.escape(message)):
        evaluate_slo(metrics_with(), TARGETS, expected)
