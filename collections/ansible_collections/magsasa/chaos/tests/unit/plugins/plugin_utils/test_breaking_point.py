# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils._breaking_point import (
    BreakingPointError, add_to_json, bracket, fit_linear, headroom, next_step, predict_crossing, ramp_values,
    render_all, render_markdown, response_model, validate_spec,
)

LOSS = {'scenario_type': 'packet_loss', 'parameter': 'loss_percent', 'start': 0, 'stop': 40, 'resolution': 2,
        'coarse_steps': 5, 'max_experiments': 10, 'time_budget': 1000, 'experiment_seconds': 60}


def search_against(knee, spec=None, limit=30):
    """Run the search against a service that passes up to ``knee`` and fails above it."""
    spec = spec or LOSS
    steps = []
    for dummy in range(limit):
        answer = next_step(spec, steps, elapsed=len(steps) * spec['experiment_seconds'])
        if answer['done']:
            return answer, steps
        value = answer['value']
        steps.append({'value': value, 'verdict': 'pass' if value <= knee else 'fail', 'status': 'completed'})
    raise AssertionError('the search never ended')


@pytest.mark.parametrize('knee', [0.5, 3, 9.9, 17, 25, 33.3, 39])
def test_search_brackets_the_knee_to_the_resolution(knee):
    answer, steps = search_against(knee)
    assert answer['knee'] <= knee < answer['first_fail']
    assert answer['first_fail'] - answer['knee'] <= LOSS['resolution']
    assert len(steps) <= LOSS['max_experiments']


def test_search_ramps_before_it_bisects():
    dummy, steps = search_against(17)
    values = [s['value'] for s in steps]
    assert values[:3] == [0, 10, 20]
    assert all(10 < v < 20 for v in values[3:])


def test_search_that_breaks_at_once_says_so():
    answer, steps = search_against(-1, dict(LOSS, start=5))
    assert len(steps) == 1
    assert answer['reason'] == 'breaks at the lowest value tried (5)'


def test_search_that_never_breaks_reports_the_top():
    answer, steps = search_against(1000)
    assert [s['value'] for s in steps] == ramp_values(validate_spec(LOSS))
    assert 'no SLO broke up to 40' in answer['reason']


@pytest.mark.parametrize('step, reason', [
    ({'value': 10, 'verdict': 'fail', 'status': 'aborted', 'reason': 'stop condition breached: error rate 80 %'},
     'stopped at 10: stop condition breached: error rate 80 %'),
    ({'value': 10, 'verdict': 'fail', 'status': 'completed', 'recovered': False},
     'stopped at 10: the target did not recover'),
])
def test_search_stops_at_once_on_a_stop_condition_or_no_recovery(step, reason):
    answer = next_step(LOSS, [{'value': 0, 'verdict': 'pass', 'status': 'completed'}, step])
    assert answer['done'] and answer['reason'] == reason


def test_search_stops_at_the_experiment_and_time_budgets():
    steps = [{'value': 0, 'verdict': 'pass'}, {'value': 10, 'verdict': 'pass'}]
    assert 'max_experiments (2)' in next_step(dict(LOSS, max_experiments=2), steps)['reason']
    assert 'time_budget' in next_step(LOSS, steps, elapsed=950)['reason']


def test_integer_parameters_stay_on_whole_numbers():
    spec = {'scenario_type': 'cpu', 'parameter': 'workers', 'start': 1, 'stop': 8, 'resolution': 1, 'coarse_steps': 3}
    assert ramp_values(validate_spec(spec)) == [1, 4, 8]
    answer = next_step(spec, [{'value': 1, 'verdict': 'pass'}, {'value': 4, 'verdict': 'pass'},
                              {'value': 8, 'verdict': 'fail'}])
    assert answer['value'] == 6 and isinstance(answer['value'], int)


@pytest.mark.parametrize('change, message', [
    ({'parameter': 'workers'}, "parameter 'workers' is not one a packet_loss fault can ramp; use one of: loss_percent"),
    ({'scenario_type': 'container'}, "scenario type 'container' cannot be ramped"),
    ({'start': 30, 'stop': 10}, 'start must be below stop, got start=30 stop=10'),
    ({'stop': 150}, 'stop must be at most 100 for loss_percent, got 150'),
    ({'start': -5}, 'start must be at least 0 for loss_percent, got -5'),
    ({'resolution': 0.001}, 'resolution must be at least 0.04 for loss_percent'),
    ({'resolution': 80}, 'resolution must not exceed the range 0-40, got 80'),
    ({'start': 'lots'}, "start must be a number, got 'lots'"),
    ({'time_budget': 30}, 'time_budget (30 s) is shorter than one experiment (60 s)'),
    ({'max_experiments': 0}, 'max_experiments must be an integer of at least 1, got 0'),
    ({'coarse_steps': 1}, 'coarse_steps must be an integer of at least 2, got 1'),
])
def test_bad_searches_are_refused_naming_the_field(change, message):
    with pytest.raises(BreakingPointError) as caught:
        validate_spec(dict(LOSS, **change))
    assert message in str(caught.value)


def test_integer_resolution_below_one_is_refused():
    spec = {'scenario_type': 'cpu', 'parameter': 'workers', 'start': 1, 'stop': 8, 'resolution': 0.5}
    with pytest.raises(BreakingPointError, match='resolution must be at least 1 for workers'):
        validate_spec(spec)


def test_bracket_ignores_passes_above_the_first_failure():
    steps = [{'value': 5, 'verdict': 'pass'}, {'value': 10, 'verdict': 'fail'}, {'value': 12, 'verdict': 'pass'}]
    assert bracket(steps) == (5, 10)


def test_linear_fit_recovers_an_exact_line():
    fit = fit_linear([(x, 3.0 * x + 2.0) for x in range(6)])
    assert fit['slope'] == pytest.approx(3.0)
    assert fit['intercept'] == pytest.approx(2.0)
    assert fit['r2'] == pytest.approx(1.0)
    crossing = predict_crossing(fit, 17.0)
    assert crossing['value'] == pytest.approx(5.0)
    assert crossing['uncertainty'] == pytest.approx(0.0)


@pytest.mark.parametrize('points', [[], [(1, 2)], [(3, 1), (3, 5)], [(1, None), (2, None)]])
def test_linear_fit_needs_two_distinct_values(points):
    assert fit_linear(points) is None
    assert predict_crossing(fit_linear(points), 1.0) is None


def test_noisy_fit_states_an_uncertainty_that_covers_the_truth():
    noise = [0.8, -1.1, 0.4, -0.3, 1.2, -0.9, 0.1]
    points = [(x, 2.0 * x + 1.0 + n) for x, n in zip(range(0, 35, 5), noise)]
    crossing = predict_crossing(fit_linear(points), 41.0)
    assert crossing['uncertainty'] > 0
    assert abs(crossing['value'] - 20.0) <= 2 * crossing['uncertainty']


def test_response_model_predicts_each_slo_and_checks_it_against_the_search():
    steps = [{'value': v, 'verdict': 'pass' if v < 20 else 'fail',
              'metrics': {'error_rate_percent': v * 0.25, 'availability_percent': 100 - v * 0.25}}
             for v in (0, 10, 15, 17, 20, 30)]
    model = response_model(steps, {'max_error_rate_percent': 4.5, 'min_availability_percent': 95.5})
    by_metric = dict((m['metric'], m) for m in model)
    assert by_metric['error_rate_percent']['predicted_break']['value'] == pytest.approx(18.0)
    assert by_metric['availability_percent']['predicted_break']['value'] == pytest.approx(18.0)
    assert by_metric['error_rate_percent']['agrees'] is True
    assert [m['metric'] for m in model] == ['error_rate_percent', 'availability_percent']


def test_headroom_compares_the_catalog_with_the_knee():
    catalog = [
        {'name': 'Light Packet Loss', 'type': 'packet_loss', 'parameters': {'loss_percent': 5}},
        {'name': 'Heavy Packet Loss', 'type': 'packet_loss', 'parameters': {'loss_percent': 30}},
        {'name': 'Light CPU Stress', 'type': 'cpu', 'parameters': {'workers': 2}},
        {'name': 'Region Failure', 'type': 'packet_loss', 'parameters': {}},
    ]
    assert headroom(14, catalog, 'packet_loss', 'loss_percent') == [
        {'scenario': 'Light Packet Loss', 'value': 5, 'ratio': 0.36},
        {'scenario': 'Heavy Packet Loss', 'value': 30, 'ratio': 2.14},
    ]


# -- the report section ------------------------------------------------------------------------

def entry_for(values, knee_at, catalog=None):
    """A search entry as the role publishes it, for a service whose error rate jumps past knee_at."""
    steps = [{'value': v, 'verdict': 'pass' if v <= knee_at else 'fail', 'status': 'completed',
              'metrics': {'error_rate_percent': 0.0 if v <= knee_at else 80.0, 'availability_percent': 100.0,
                          'mttr_seconds': None, 'latency_degradation_ms': 1.5, 'recovery_seconds': 0.2}}
             for v in values]
    knee, first_fail = bracket(steps)
    return {'scenario': 'Medium Packet Loss', 'parameter': 'loss_percent', 'range': [2, 40], 'resolution': 2,
            'steps': steps, 'knee': knee, 'first_fail': first_fail, 'reason': 'knee found to within 2',
            'model': response_model(steps, {'max_error_rate_percent': 5}),
            'headroom': headroom(knee, catalog or [], 'packet_loss', 'loss_percent')}


CATALOG = [{'name': 'Light Packet Loss', 'type': 'packet_loss', 'parameters': {'loss_percent': 5}},
           {'name': 'Heavy Packet Loss', 'type': 'packet_loss', 'parameters': {'loss_percent': 30}},
           {'name': 'Light CPU Stress', 'type': 'cpu', 'parameters': {'load_percent': 80}}]


def test_render_knee_table_model_headroom_chart():
    text = render_markdown(entry_for([2, 14.67, 27.33, 21, 17.83, 16.25], 16.25, CATALOG))
    assert text.startswith('## Breaking point: Medium Packet Loss, loss_percent\n')
    assert '**Knee: loss_percent=16.25**' in text and 'first failure at 17.83' in text
    rows = [line for line in text.splitlines() if line.startswith('| ') and line[2:3].isdigit()]
    assert [row.split(' | ')[0] for row in rows][:6] == ['| 2', '| 14.67', '| 16.25', '| 17.83', '| 21', '| 27.33']
    assert '| 27.33 | n/a | 80 | 100 | 1.5 | 0.2 | fail | completed |' in text
    assert 'Heavy Packet Loss at 30 is 1.85× beyond the measured knee of 16.25' in text
    assert 'Light Packet Loss at 5 is 0.31× within the measured knee of 16.25' in text
    assert 'Light CPU Stress' not in text
    assert '| error_rate_percent | <= 5 |' in text and ' ± ' in text
    chart = text.split('```mermaid\n', 1)[1].split('```', 1)[0]
    assert chart.startswith('xychart-beta\n')
    assert 'bar [0, 0, 0, 80, 80, 80]' in chart and 'line [5, 5, 5, 5, 5, 5]' in chart


@pytest.mark.parametrize('values, knee_at, expected', [
    ([30], 10, '**No passing value**: the service breaks at the lowest value tried (loss_percent=30).'),
    ([2, 40], 50, '**No SLO broke** up to loss_percent=40, the highest value tried'),
    ([], 10, '**No step finished**'),
])
def test_render_without_a_bracket(values, knee_at, expected):
    text = render_markdown(entry_for(values, knee_at, CATALOG))
    assert expected in text
    assert 'Headroom' not in text or values == [2, 40]


def test_render_escapes_pipes_in_cells():
    entry = entry_for([2, 40], 10)
    entry['steps'][1]['status'] = 'aborted|x'
    assert 'aborted\\|x' in render_markdown(entry)


def test_render_all_and_json():
    entries = [entry_for([2, 40], 10)]
    assert render_all([]) == ''
    assert render_all(entries).startswith('\n## Breaking point')
    original = json.dumps({'schema': 1, 'experiments': []})
    assert add_to_json(original, []) == original
    assert json.loads(add_to_json(original, entries))['breaking_points'][0]['knee'] == 2


def test_whole_values_of_a_float_parameter_stay_whole():
    values = ramp_values(validate_spec(dict(LOSS, start=10, stop=70, coarse_steps=4)))
    assert values == [10, 30, 50, 70]
    assert all(isinstance(v, int) for v in values)


def test_render_marks_expected_violations_in_the_model():
    entry = entry_for([2, 14.67, 27.33], 14.67)
    entry['model'] = response_model(entry['steps'], {'max_error_rate_percent': 5, 'max_latency_degradation_ms': 1})
    entry['model'][1]['fit']['slope'] = 0.5
    entry['expected_violations'] = ['latency_degradation_ms']
    text = render_markdown(entry)
    latency = [line for line in text.splitlines() if line.startswith('| latency_degradation_ms |')]
    assert latency and latency[0].endswith('| expected violation |')
    assert [line for line in text.splitlines() if line.startswith('| error_rate_percent |')][0].endswith('| yes |')


def test_model_agreement_only_for_a_metric_that_broke():
    steps = [{'value': v, 'verdict': 'pass' if v <= 20 else 'fail',
              'metrics': {'error_rate_percent': v / 4.0, 'latency_degradation_ms': 10.0 + v}}
             for v in (10, 20, 30)]
    model = {m['metric']: m for m in response_model(steps, {'max_error_rate_percent': 5,
                                                            'max_latency_degradation_ms': 500})}
    assert model['error_rate_percent']['predicted_break']['value'] == pytest.approx(20)
    assert model['error_rate_percent']['agrees'] is True
    assert model['latency_degradation_ms']['predicted_break']['value'] == pytest.approx(490)
    assert model['latency_degradation_ms']['agrees'] is None
