# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""PromQL checks: steady-state conditions and stop conditions read from a Prometheus HTTP API.

Standard library and ansible's own URL helper only (targets run Python 3.8+). The prometheus_query
module and the experiment's holder (the chaos_hold action, during a fault) both call
:func:`evaluate_checks`; everything else here is pure.

* query_url(base_url, expression, at=None) -> the instant-query URL
* parse_response(status, body, expression) -> [(labels, value)] or PromQLError naming the expression
* judge(check, series) -> whether the check's condition holds, with the values and a reason
* evaluate_checks(url, checks, purpose, ...) -> query each check and judge it (the HTTP side)

A check is ``{name, query, op, threshold}``. With ``op`` and ``threshold`` the condition holds for a
series whose value compares true; without them the expression itself is the condition (PromQL
comparisons filter, so ``error_ratio > 0.05`` returns a series only while it is true).
"""

import json
import math
import operator
import time

from urllib.error import HTTPError
from urllib.parse import urlencode

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

COMPARISONS = {
    '>': operator.gt,
    '>=': operator.ge,
    '<': operator.lt,
    '<=': operator.le,
    '==': operator.eq,
    '!=': operator.ne,
}


class PromQLError(Exception):
    """A check that cannot be evaluated: the message names the expression and what to do."""


def query_url(base_url, expression, at=None):
    """The Prometheus instant-query URL for an expression (``/api/v1/query``)."""
    params = [('query', expression)]
    if at is not None:
        params.append(('time', '%.3f' % float(at)))
    return '%s/api/v1/query?%s' % (str(base_url).rstrip('/'), urlencode(params))


def _value(text, expression):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise PromQLError('PromQL expression %r returned a value that is not a number: %r' % (expression, text))
    return value


def parse_response(status, body, expression):
    """The series of an instant-query answer as ``[(labels dict, float value)]``.

    A non-2xx answer or ``status: error`` raises PromQLError with Prometheus's own error text and the
    expression; a range vector (matrix) or string result is refused, since a check compares one
    value per series.
    """
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    if document.get('status') != 'success' or not 200 <= int(status or 0) < 300:
        error = document.get('error') or ('HTTP %s: %s' % (status, (body or '')[:200].strip() or 'no body'))
        kind = document.get('errorType')
        if kind == 'bad_data':
            raise PromQLError('Prometheus rejected the PromQL expression %r: %s' % (expression, error))
        raise PromQLError('Prometheus could not evaluate the PromQL expression %r (%s): %s'
                          % (expression, kind or 'HTTP %s' % status, error))
    data = document.get('data') or {}
    kind = data.get('resultType')
    result = data.get('result')
    if kind == 'scalar':
        return [({}, _value(result[1], expression))]
    if kind == 'vector':
        return [(dict(item.get('metric') or {}), _value(item['value'][1], expression)) for item in result or []]
    raise PromQLError('PromQL expression %r returned a %s; a check needs an instant vector or a scalar '
                      '(drop the range selector, or wrap it in a function such as rate())' % (expression, kind))


def normalize_check(check, index=0):
    """Validate one check (a dict) and fill its defaults; errors name the field and the value."""
    if not isinstance(check, dict):
        raise PromQLError('check %d must be a dict with query, op and threshold, got %r' % (index, check))
    query = check.get('query')
    if not isinstance(query, str) or not query.strip():
        raise PromQLError('check %d: `query` must be a non-empty PromQL expression, got %r' % (index, query))
    op, threshold = check.get('op'), check.get('threshold')
    if (op is None) != (threshold is None):
        raise PromQLError('check %r: `op` and `threshold` go together (got op=%r, threshold=%r)'
                          % (check.get('name') or query, op, threshold))
    if op is not None and op not in COMPARISONS:
        raise PromQLError('check %r: `op` must be one of %s, got %r'
                          % (check.get('name') or query, ', '.join(sorted(COMPARISONS)), op))
    if threshold is not None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise PromQLError('check %r: `threshold` must be a number, got %r' % (check.get('name') or query, threshold))
        if math.isnan(threshold):
            raise PromQLError('check %r: `threshold` must be a number, got NaN' % (check.get('name') or query))
    return {'name': str(check.get('name') or query), 'query': query, 'op': op, 'threshold': threshold}


def _label_text(labels):
    shown = dict((k, v) for k, v in labels.items() if k != '__name__')
    if not shown:
        return ''
    return '{%s}' % ','.join('%s="%s"' % (k, shown[k]) for k in sorted(shown))


def judge(check, series, purpose):
    """Evaluate one normalized check over the series of its query.

    ``purpose`` is ``steady_state`` (the condition must hold for every series, and there must be one)
    or ``stop_condition`` (the condition holding for any series breaches it). Returns a dict with
    ``holds`` (the condition), ``ok`` (steady state met / stop condition not breached), ``value`` (the
    series value that decided, or the first), ``values`` and ``reason`` (empty when ok).
    """
    values = [{'labels': labels, 'value': value} for labels, value in series]
    if check['op'] is None:
        matching = values
    else:
        compare = COMPARISONS[check['op']]
        matching = [v for v in values if not math.isnan(v['value']) and compare(v['value'], check['threshold'])]
    if purpose == 'stop_condition':
        holds = bool(matching)
        decider = matching[0] if matching else (values[0] if values else None)
        reason = ''
        if holds and check['op']:
            reason = 'PromQL stop condition %r: %s%s is %s, %s %s' % (
                check['name'], check['query'], _label_text(decider['labels']), _number(decider['value']),
                check['op'], _number(check['threshold']))
        elif holds:
            reason = 'PromQL stop condition %r: %s returned %s%s' % (
                check['name'], check['query'], _number(decider['value']), _label_text(decider['labels']))
        return {'name': check['name'], 'query': check['query'], 'op': check['op'], 'threshold': check['threshold'],
                'holds': holds, 'ok': not holds, 'value': decider['value'] if decider else None,
                'values': values, 'reason': reason}
    failing = [v for v in values if v not in matching]
    holds = bool(values) and not failing
    decider = failing[0] if failing else (values[0] if values else None)
    reason = ''
    if not values:
        reason = 'PromQL steady-state check %r: %s returned no data' % (check['name'], check['query'])
    elif failing:
        reason = 'PromQL steady-state check %r: %s%s is %s, needs %s %s' % (
            check['name'], check['query'], _label_text(decider['labels']), _number(decider['value']),
            check['op'], _number(check['threshold']))
    return {'name': check['name'], 'query': check['query'], 'op': check['op'], 'threshold': check['threshold'],
            'holds': holds, 'ok': holds, 'value': decider['value'] if decider else None,
            'values': values, 'reason': reason}


def _number(value):
    if value is None:
        return 'none'
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return ('%.6g' % value)


def query(base_url, expression, headers=None, timeout=5.0, validate_certs=True):
    """The series of one instant query; an unreachable server or a rejected expression is a PromQLError."""
    url = query_url(base_url, expression)
    try:
        response = open_url(url, headers=headers or {}, timeout=timeout, validate_certs=validate_certs, method='GET')
        return parse_response(response.getcode(), to_text(response.read()), expression)
    except HTTPError as exc:  # Prometheus answers 400/422 with its own error text for a bad expression
        return parse_response(exc.code, to_text(exc.read()), expression)
    except PromQLError:
        raise
    except Exception as exc:  # URLError, refused connection, timeout, TLS: the server is not usable
        raise PromQLError('cannot reach Prometheus at %s to evaluate %r: %s: %s'
                          % (base_url, expression, type(exc).__name__, exc))


def evaluate_checks(base_url, checks, purpose, headers=None, timeout=5.0, validate_certs=True):
    """Query and judge every check; returns ``passed``, ``breached``, ``reasons``, ``results`` and one
    sample per check (``at``, ``name``, ``value``, ``holds``, ``purpose``) for the experiment's record."""
    checks = [normalize_check(check, index) for index, check in enumerate(checks)]
    results, samples = [], []
    for check in checks:
        judged = judge(check, query(base_url, check['query'], headers, timeout, validate_certs), purpose)
        results.append(judged)
        samples.append({'at': round(time.time(), 3), 'name': check['name'], 'value': judged['value'],
                        'holds': judged['holds'], 'purpose': purpose})
    reasons = [r['reason'] for r in results if not r['ok']]
    return dict(passed=not reasons, breached=purpose == 'stop_condition' and bool(reasons),
                reasons=reasons, results=results, samples=samples)
