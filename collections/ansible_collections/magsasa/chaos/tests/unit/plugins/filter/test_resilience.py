# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.magsasa.chaos.plugins.filter.resilience import FilterModule

FILTERS = FilterModule().filters()
T0 = 1764440000.0


def samples(pattern):
    return [{'seq': i, 'sent': T0 + i * 0.1, 'latency_ms': 2.0, 'ok': c == '.'} for i, c in enumerate(pattern)]


def test_filters_read_a_samples_file_and_a_list_alike(tmp_path):
    series = samples('....xxx....')
    path = tmp_path / 'p.samples.jsonl'
    path.write_text(''.join(json.dumps(s) + '\n' for s in series))
    from_file = FILTERS['resilience_metrics'](str(path), fault_start=T0 + 0.25, fault_end=T0 + 0.75)
    assert from_file == FILTERS['resilience_metrics'](series, fault_start=T0 + 0.25, fault_end=T0 + 0.75)
    assert from_file['mttr_seconds'] == pytest.approx(0.3)
    slo = FILTERS['slo_verdict'](from_file, {'mttr_seconds': 0.2})
    assert slo['verdict'] == 'fail' and slo['checks'][0]['value'] == pytest.approx(0.3)
    assert FILTERS['stop_condition'](str(path), window=5, max_consecutive_failures=3)['breached'] is True
    assert len(FILTERS['resilience_timeline'](str(path), fault_start=T0, max_points=4)) == 4


@pytest.mark.parametrize('name, args, message', [
    ('resilience_metrics', ({'ok': True},), 'the input must be a list of samples or the path of a samples file, got dict'),
    ('resilience_metrics', ('/nonexistent/p.samples.jsonl',), 'cannot read samples file /nonexistent/p.samples.jsonl'),
    ('slo_verdict', ([], {}), 'metrics must be a dict'),
    ('slo_verdict', ({}, {'max_error_rate_percent': -1}), 'max_error_rate_percent must be a number >= 0, got -1'),
    ('slo_verdict', ({}, {}, ['errors']), "expected_violations: unknown metric 'errors'"),
    ('stop_condition', (samples('..'),), None),
])
def test_filter_errors_name_the_filter(name, args, message):
    if message is None:
        assert FILTERS[name](*args)['breached'] is False
        return
    with pytest.raises(AnsibleFilterError, match='magsasa.chaos.%s: .*%s' % (name, message)):
        FILTERS[name](*args)


def test_slo_verdict_expected_violations_through_the_filter():
    metrics = {'error_rate_percent': 30.0, 'availability_percent': 70.0, 'recovery_seconds': 1.0, 'recovered': True}
    targets = {'max_error_rate_percent': 5, 'min_availability_percent': 95, 'max_recovery_seconds': 10}
    assert FILTERS['slo_verdict'](metrics, targets)['verdict'] == 'fail'
    slo = FILTERS['slo_verdict'](metrics, targets, expected=['error_rate_percent', 'availability_percent'])
    assert slo['verdict'] == 'pass' and slo['expected_violations'] == ['error_rate_percent', 'availability_percent']
