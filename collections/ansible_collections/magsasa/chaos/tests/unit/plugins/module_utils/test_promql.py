# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import math

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils._promql import (
    PromQLError, judge, normalize_check, parse_response, query_url,
)


def vector(*values, **labels):
    return json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': dict(labels, instance='i%d' % n), 'value': [1764440000.0, str(v)]} for n, v in enumerate(values)]}})


@pytest.mark.parametrize('base, expression, at, expected', [
    ('http://p:9090', 'up', None, 'http://p:9090/api/v1/query?query=up'),
    ('http://p:9090/', 'up', None, 'http://p:9090/api/v1/query?query=up'),
    ('https://h/prometheus', 'rate(x[5s]) > 0.05', 12.5,
     'https://h/prometheus/api/v1/query?query=rate%28x%5B5s%5D%29+%3E+0.05&time=12.500'),
])
def test_query_url(base, expression, at, expected):
    assert query_url(base, expression, at) == expected


@pytest.mark.parametrize('status, body, expected', [
    (200, vector(0.5, 2), [0.5, 2.0]),
    (200, vector(), []),
    (200, json.dumps({'status': 'success', 'data': {'resultType': 'scalar', 'result': [1.0, '0.25']}}), [0.25]),
    (200, vector('NaN'), ['nan']),
])
def test_parse_response_values(status, body, expected):
    values = [v for _labels, v in parse_response(status, body, 'q')]
    assert [('nan' if math.isnan(v) else v) for v in values] == expected


@pytest.mark.parametrize('status, body, message', [
    (400, json.dumps({'status': 'error', 'errorType': 'bad_data', 'error': '1:5: parse error: unclosed left parenthesis'}),
     "Prometheus rejected the PromQL expression 'sum(x' : 1:5: parse error"),
    (422, json.dumps({'status': 'error', 'errorType': 'execution', 'error': 'too many samples'}),
     "Prometheus could not evaluate the PromQL expression 'sum(x' (execution): too many samples"),
    (502, '<html>bad gateway</html>', "Prometheus could not evaluate the PromQL expression 'sum(x' (HTTP 502): HTTP 502"),
    (200, json.dumps({'status': 'success', 'data': {'resultType': 'matrix', 'result': []}}),
     "PromQL expression 'sum(x' returned a matrix; a check needs an instant vector or a scalar"),
    (200, json.dumps({'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': {}, 'value': [1, 'abc']}]}}), "returned a value that is not a number: 'abc'"),
])
def test_parse_response_errors_name_the_expression(status, body, message):
    with pytest.raises(PromQLError) as caught:
        parse_response(status, body, 'sum(x')
    assert message.replace(' :', ':') in str(caught.value)


@pytest.mark.parametrize('check, message', [
    ('up', 'check 0 must be a dict'),
    ({'query': ''}, '`query` must be a non-empty PromQL expression'),
    ({'query': 'up', 'op': '>'}, '`op` and `threshold` go together'),
    ({'query': 'up', 'threshold': 1}, '`op` and `threshold` go together'),
    ({'query': 'up', 'op': '=>', 'threshold': 1}, "`op` must be one of !=, <, <=, ==, >, >=, got '=>'"),
    ({'query': 'up', 'op': '>', 'threshold': 'high'}, "`threshold` must be a number, got 'high'"),
])
def test_normalize_check_rejects_bad_checks(check, message):
    with pytest.raises(PromQLError) as caught:
        normalize_check(check)
    assert message in str(caught.value)


def test_normalize_check_defaults_the_name_to_the_query():
    assert normalize_check({'query': 'up', 'op': '<', 'threshold': '1'}) == {
        'name': 'up', 'query': 'up', 'op': '<', 'threshold': 1.0}


def series(*values):
    return [({'instance': 'i%d' % n}, float(v)) for n, v in enumerate(values)]


@pytest.mark.parametrize('op, threshold, values, purpose, holds, ok, value', [
    # stop condition: any series that compares true breaches
    ('>', 0.05, [0.01, 0.2], 'stop_condition', True, False, 0.2),
    ('>', 0.05, [0.01, 0.02], 'stop_condition', False, True, 0.01),
    ('>', 0.05, [], 'stop_condition', False, True, None),
    ('>', 0.05, ['nan'], 'stop_condition', False, True, 'nan'),
    (None, None, [0.3], 'stop_condition', True, False, 0.3),  # the expression filters: a series means true
    (None, None, [], 'stop_condition', False, True, None),
    # steady state: every series must compare true, and there must be one
    ('<', 0.01, [0.0, 0.001], 'steady_state', True, True, 0.0),
    ('<', 0.01, [0.0, 0.5], 'steady_state', False, False, 0.5),
    ('<', 0.01, [], 'steady_state', False, False, None),
    ('>=', 1, [1], 'steady_state', True, True, 1.0),
    ('!=', 0, [0], 'steady_state', False, False, 0.0),
])
def test_judge(op, threshold, values, purpose, holds, ok, value):
    check = {'name': 'c', 'query': 'q', 'op': op, 'threshold': threshold}
    judged = judge(check, series(*values), purpose)
    assert (judged['holds'], judged['ok']) == (holds, ok)
    assert ('nan' if judged['value'] is not None and math.isnan(judged['value']) else judged['value']) == value
    assert bool(judged['reason']) == (not ok)


def test_judge_reasons_name_the_check_the_series_and_the_threshold():
    check = {'name': 'error ratio', 'query': 'ratio', 'op': '>', 'threshold': 0.05}
    assert judge(check, series(0.01, 0.31), 'stop_condition')['reason'] == \
        "PromQL stop condition 'error ratio': ratio{instance=\"i1\"} is 0.31, > 0.05"
    check = {'name': 'traffic', 'query': 'rate(x[1m])', 'op': '>', 'threshold': 0}
    assert judge(check, [], 'steady_state')['reason'] == \
        "PromQL steady-state check 'traffic': rate(x[1m]) returned no data"
