# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The breaking-point search: which value to try next, and a model of how the service responds.

Plain data in, plain data out; the ``breaking_point`` filters and the report use these.

A search ramps one parameter of one scenario. ``spec`` says which and how far::

    {'scenario_type': 'packet_loss', 'parameter': 'loss_percent', 'start': 2, 'stop': 40,
     'resolution': 2, 'coarse_steps': 4, 'max_experiments': 8, 'time_budget': 900,
     'experiment_seconds': 60}

Each finished experiment becomes a step ``{'value': v, 'verdict': 'pass'|'fail', 'status': ...,
'metrics': {...}, 'slo': {...}}``. :func:`next_step` looks at the steps so far and answers with the
next value, or why the search is done. The search is a coarse ramp upwards until the first failing
value, then a bisection between the last passing and the first failing value until they are no
more than ``resolution`` apart: the knee is the highest value that met every SLO.
"""

import json
import math

from ansible_collections.magsasa.chaos.plugins.module_utils._metrics import SLO_TARGETS

# The parameters a search can ramp, per scenario type: (lowest, highest, integer-valued).
# The bounds are the fault modules' own; ``None`` means the module sets no upper bound.
RAMPABLE = {
    'cpu': {'load_percent': (1, 100, True), 'workers': (1, 1024, True)},
    'memory': {'size_mb': (1, None, False), 'size_percent': (1, 100, False)},
    'disk': {'workers': (1, 64, True), 'total_mb': (1, None, True)},
    'network_delay': {'delay_ms': (0, None, False), 'jitter_ms': (0, None, False)},
    'packet_loss': {'loss_percent': (0, 100, False)},
    'database': {'connections': (1, None, True)},
}

# Statuses after which the search stops at once: the system did not hold up or a stop
# condition ended the fault, so going further would only break it harder.
STOPPING_STATUSES = ('aborted', 'failed')


class BreakingPointError(ValueError):
    """Raised for a search that cannot run (names the field and the value)."""


def _number(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise BreakingPointError('%s must be a number, got %r' % (field, value))
    if math.isnan(value) or math.isinf(value):
        raise BreakingPointError('%s must be a finite number, got %r' % (field, value))
    return value


def validate_spec(spec):
    """Check a search before its first step; returns the spec with defaults and numbers filled in."""
    if not isinstance(spec, dict):
        raise BreakingPointError('the breaking-point search must be a dict, got %r' % (spec,))
    kind = spec.get('scenario_type')
    if kind not in RAMPABLE:
        raise BreakingPointError('scenario type %r cannot be ramped; rampable types: %s'
                                 % (kind, ', '.join(sorted(RAMPABLE))))
    parameter = spec.get('parameter')
    if parameter not in RAMPABLE[kind]:
        raise BreakingPointError('parameter %r is not one a %s fault can ramp; use one of: %s'
                                 % (parameter, kind, ', '.join(sorted(RAMPABLE[kind]))))
    lowest, highest, integer = RAMPABLE[kind][parameter]
    start = _number('start', spec.get('start'))
    stop = _number('stop', spec.get('stop'))
    if start >= stop:
        raise BreakingPointError('start must be below stop, got start=%s stop=%s' % (start, stop))
    if start < lowest:
        raise BreakingPointError('start must be at least %s for %s, got %s' % (lowest, parameter, start))
    if highest is not None and stop > highest:
        raise BreakingPointError('stop must be at most %s for %s, got %s' % (highest, parameter, stop))
    resolution = _number('resolution', spec.get('resolution', (stop - start) / 16.0))
    smallest = 1 if integer else (stop - start) / 1000.0
    if resolution < smallest:
        raise BreakingPointError('resolution must be at least %s for %s (finer than one step can tell apart), got %s'
                                 % (smallest, parameter, resolution))
    if resolution > stop - start:
        raise BreakingPointError('resolution must not exceed the range %s-%s, got %s' % (start, stop, resolution))
    checked = dict(spec, start=start, stop=stop, resolution=resolution, integer=integer)
    for field, default, minimum in (('coarse_steps', 4, 2), ('max_experiments', 8, 1)):
        value = spec.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BreakingPointError('%s must be an integer of at least %d, got %r' % (field, minimum, value))
        checked[field] = value
    experiment_seconds = _number('experiment_seconds', spec.get('experiment_seconds', 0))
    time_budget = _number('time_budget', spec.get('time_budget', 3600))
    if time_budget < experiment_seconds:
        raise BreakingPointError('time_budget (%s s) is shorter than one experiment (%s s)'
                                 % (time_budget, experiment_seconds))
    checked.update(experiment_seconds=experiment_seconds, time_budget=time_budget)
    return checked


def _on_grid(spec, value):
    """``value`` rounded to the search's grid (whole numbers for integer parameters)."""
    value = min(spec['stop'], max(spec['start'], value))
    if spec['integer']:
        return int(round(value))
    value = round(value, 6)
    # a whole number reads as one in step names and the report (30, not 30.0)
    return int(value) if value == int(value) else value


def ramp_values(spec):
    """The coarse ramp: ``coarse_steps`` values from start to stop, on the grid, ascending."""
    count = spec['coarse_steps']
    span = spec['stop'] - spec['start']
    values = []
    for index in range(count):
        value = _on_grid(spec, spec['start'] + span * index / (count - 1))
        if value not in values:
            values.append(value)
    return values


def bracket(steps):
    """``(last passing value below the first failure, first failing value)``; either may be None."""
    failing = [s['value'] for s in steps if s.get('verdict') != 'pass']
    first_fail = min(failing) if failing else None
    passing = [s['value'] for s in steps if s.get('verdict') == 'pass'
               and (first_fail is None or s['value'] < first_fail)]
    return (max(passing) if passing else None), first_fail


def next_step(spec, steps, elapsed=0.0):
    """The next value to try, or why the search is done.

    Returns ``{'done': bool, 'value': v, 'phase': 'ramp'|'bisect', 'reason': str}``.
    """
    spec = validate_spec(spec)
    steps = list(steps or [])
    tried = [s['value'] for s in steps]
    knee, first_fail = bracket(steps)

    def done(reason):
        return {'done': True, 'value': None, 'phase': None, 'reason': reason, 'knee': knee, 'first_fail': first_fail}

    stopped = [s for s in steps if s.get('status') in STOPPING_STATUSES or s.get('recovered') is False]
    if stopped:
        last = stopped[-1]
        why = last.get('reason') or ('the target did not recover' if last.get('recovered') is False else last['status'])
        return done('stopped at %s: %s' % (last['value'], why))
    if first_fail is not None and knee is None and first_fail <= min(tried):
        return done('breaks at the lowest value tried (%s)' % first_fail)
    if first_fail is None:
        untried = [v for v in ramp_values(spec) if v not in tried]
        if not untried:
            return done('no SLO broke up to %s, the top of the range' % spec['stop'])
        candidate, phase = untried[0], 'ramp'
    else:
        if first_fail - knee <= spec['resolution']:
            return done('knee found to within %s' % spec['resolution'])
        candidate, phase = _on_grid(spec, (knee + first_fail) / 2.0), 'bisect'
        if candidate in (knee, first_fail):
            return done('knee found to within the grid of %s' % spec['parameter'])
    if len(steps) >= spec['max_experiments']:
        return done('max_experiments (%d) reached' % spec['max_experiments'])
    if elapsed + spec['experiment_seconds'] > spec['time_budget']:
        return done('time_budget (%s s) would be exceeded by another experiment' % spec['time_budget'])
    return {'done': False, 'value': candidate, 'phase': phase, 'reason': '', 'knee': knee, 'first_fail': first_fail}


def fit_linear(points):
    """Least-squares line through ``[(x, y), ...]``: slope, intercept, r2 and what the inverse
    prediction needs (n, mean of x, Sxx, residual standard deviation). None below two distinct x."""
    points = [(float(x), float(y)) for x, y in points if y is not None]
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, dummy in points) / n
    mean_y = sum(y for dummy, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, dummy in points)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - (intercept + slope * x)) ** 2 for x, y in points)
    total = sum((y - mean_y) ** 2 for dummy, y in points)
    r2 = 1.0 - residual / total if total > 0 else 1.0
    residual_sd = math.sqrt(residual / (n - 2)) if n > 2 else 0.0
    return {'slope': slope, 'intercept': intercept, 'r2': r2, 'n': n, 'mean_x': mean_x, 'sxx': sxx,
            'residual_sd': residual_sd}


def predict_crossing(fit, target):
    """Where the fitted line reaches ``target``, with the one-sigma uncertainty of that inverse
    prediction (residual spread and the spread of the slope, taken back through the slope).
    None when the line is flat or missing."""
    if not fit or fit['slope'] == 0:
        return None
    x = (target - fit['intercept']) / fit['slope']
    spread = fit['residual_sd'] * math.sqrt(1.0 + 1.0 / fit['n'] + (x - fit['mean_x']) ** 2 / fit['sxx'])
    return {'value': x, 'uncertainty': spread / abs(fit['slope'])}


def response_model(steps, targets):
    """One least-squares fit per SLO metric against the ramped value, and where each SLO would break.

    ``targets`` are the SLO targets the steps were judged against (``mttr_seconds`` …). Each entry
    names the metric, its fit, the predicted breaking value and whether the search agrees with it
    (the measured break lies within two uncertainties of the prediction; None for a metric that
    met its SLO at every step, which has no measured break).
    """
    knee, first_fail = bracket(steps)
    measured = None if first_fail is None or knee is None else (knee + first_fail) / 2.0
    model = []
    for target_key, metric, op in SLO_TARGETS:
        if target_key not in (targets or {}):
            continue
        points = [(s['value'], (s.get('metrics') or {}).get(metric)) for s in steps]
        fit = fit_linear(points)
        crossing = predict_crossing(fit, float(targets[target_key]))
        entry = {'metric': metric, 'target': targets[target_key], 'op': op, 'fit': fit, 'predicted_break': crossing,
                 'agrees': None}
        values = [y for dummy, y in points if isinstance(y, (int, float))]
        limit = float(targets[target_key])
        violated = any(y > limit if op == '<=' else y < limit for y in values)
        # only a metric that broke its SLO in the search has a measured break to agree with
        if crossing is not None and measured is not None and violated:
            bound = max(2 * crossing['uncertainty'], (first_fail - knee) / 2.0)
            entry['agrees'] = abs(crossing['value'] - measured) <= bound
        model.append(entry)
    return model


def headroom(knee, catalog, scenario_type, parameter):
    """How far the catalog's own scenarios of this type sit from the measured knee.

    ``catalog`` is the scenario list; returns ``[{'scenario', 'value', 'ratio'}]`` for each scenario
    of the type that sets the parameter (ratio = value / knee; above 1 is beyond the knee).
    """
    out = []
    for scenario in catalog or []:
        if scenario.get('type') != scenario_type:
            continue
        value = (scenario.get('parameters') or {}).get(parameter)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        ratio = round(value / knee, 2) if knee else None
        out.append({'scenario': scenario.get('name'), 'value': value, 'ratio': ratio})
    return out


# -- the report's "Breaking point" section ----------------------------------------------------

# Columns of the ramp table: (metric key, heading).
RAMP_COLUMNS = (
    ('mttr_seconds', 'MTTR (s)'),
    ('error_rate_percent', 'Errors (%)'),
    ('availability_percent', 'Availability (%)'),
    ('latency_degradation_ms', 'Latency +ms'),
    ('recovery_seconds', 'Recovery (s)'),
)


def _fmt(value, digits=2):
    if value is None:
        return 'n/a'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, (int, float)):
        if float(value) == int(value):
            return str(int(value))
        return ('%.*f' % (digits, value)).rstrip('0').rstrip('.')
    return str(value)


def _cell(value):
    return _fmt(value).replace('|', '\\|').replace('\n', ' ')


def _chart(entry, metric, target):
    """A mermaid xychart of one metric against the ramped value, with the SLO target as a line."""
    steps = sorted((s for s in entry.get('steps') or [] if (s.get('metrics') or {}).get(metric) is not None),
                   key=lambda s: s['value'])
    if len(steps) < 2:
        return []
    values = [s['metrics'][metric] for s in steps]
    top = max(values + [target]) * 1.1 or 1
    return [
        '```mermaid',
        'xychart-beta',
        '    title "%s against %s"' % (metric, entry.get('parameter')),
        '    x-axis "%s" [%s]' % (entry.get('parameter'), ', '.join('"%s"' % _fmt(s['value']) for s in steps)),
        '    y-axis "%s" 0 --> %s' % (metric, _fmt(top)),
        '    bar [%s]' % ', '.join(_fmt(v, 3) for v in values),
        '    line [%s]' % ', '.join([_fmt(target, 3)] * len(steps)),
        '```',
        '',
        'Bars: %s at each step; line: the SLO target (%s).' % (metric, _fmt(target)),
        '',
    ]


def render_markdown(entry):
    """The "Breaking point" section of chaos_report.md for one search (a ``chaos_breaking_points`` entry)."""
    parameter = entry.get('parameter')
    steps = sorted(entry.get('steps') or [], key=lambda s: s.get('value'))
    span = entry.get('range') or [None, None]
    lines = ['## Breaking point: %s, %s' % (entry.get('scenario'), parameter), '',
             'Ramped %s from %s to %s to a resolution of %s: %d experiment(s); %s.'
             % (parameter, _fmt(span[0]), _fmt(span[1]), _fmt(entry.get('resolution')), len(steps),
                entry.get('reason') or 'no reason given'), '']
    knee, first_fail = entry.get('knee'), entry.get('first_fail')
    if knee is not None and first_fail is None:
        lines += ['**No SLO broke** up to %s=%s, the highest value tried: the knee lies above it.'
                  % (parameter, _fmt(knee)), '']
    elif knee is not None:
        lines += ['**Knee: %s=%s** (the highest value that met every SLO); first failure at %s.'
                  % (parameter, _fmt(knee), _fmt(first_fail)), '']
    elif first_fail is not None:
        lines += ['**No passing value**: the service breaks at the lowest value tried (%s=%s).'
                  % (parameter, _fmt(first_fail)), '']
    else:
        lines += ['**No step finished**: no knee is known.', '']
    lines += ['| %s | %s | Verdict | Status |' % (parameter, ' | '.join(h for dummy, h in RAMP_COLUMNS)),
              '|' + ' --- |' * (len(RAMP_COLUMNS) + 3)]
    for step in steps:
        metrics = step.get('metrics') or {}
        lines.append('| %s | %s | %s | %s |' % (_cell(step.get('value')),
                                                ' | '.join(_cell(metrics.get(k)) for k, dummy in RAMP_COLUMNS),
                                                _cell(step.get('verdict')), _cell(step.get('status'))))
    lines.append('')
    model = [m for m in entry.get('model') or [] if m.get('fit')]
    if model:
        lines += ['### Predicted break per SLO (least-squares line of the metric against %s)' % parameter, '',
                  '| Metric | SLO | Slope | r² | Predicted break | Agrees with the search |',
                  '| --- | --- | --- | --- | --- | --- |']
        expected = entry.get('expected_violations') or []
        for item in model:
            fit, crossing = item['fit'], item.get('predicted_break')
            agrees = 'expected violation' if item['metric'] in expected else _cell(item.get('agrees'))
            predicted = ('%s ± %s' % (_fmt(crossing['value']), _fmt(crossing['uncertainty']))
                         if crossing else 'never (flat)')
            lines.append('| %s | %s %s | %s | %s | %s | %s |' % (
                item['metric'], item.get('op'), _fmt(item.get('target')), _fmt(fit['slope'], 4), _fmt(fit['r2'], 3),
                predicted, agrees))
        lines += ['', 'A straight line fits a gradual response; a step (fine, then broken) gives a low r² '
                  'and a wide uncertainty: trust the measured knee over the prediction then.', '']
    if knee:
        rows = entry.get('headroom') or []
        if rows:
            lines += ['### Headroom of the catalog', '']
            for row in rows:
                ratio = row.get('ratio')
                if ratio is None:
                    continue
                where = 'beyond' if ratio > 1 else 'within'
                lines.append('- %s at %s is %s× %s the measured knee of %s' % (
                    row.get('scenario'), _fmt(row.get('value')), _fmt(ratio), where, _fmt(knee)))
            lines.append('')
    for item in model:
        if item['metric'] == 'error_rate_percent' or item is model[-1]:
            lines += _chart(entry, item['metric'], item.get('target'))
            break
    return '\n'.join(lines) + '\n'


def render_all(entries):
    """Every search of the run, as Markdown to append to the report (empty without searches)."""
    return ''.join('\n' + render_markdown(entry) for entry in entries or [])


def add_to_json(text, entries):
    """chaos_results.json with the searches added under ``breaking_points`` (unchanged without any)."""
    if not entries:
        return text
    document = json.loads(text)
    document['breaking_points'] = list(entries)
    return json.dumps(document, indent=2, sort_keys=True, default=str) + '\n'
