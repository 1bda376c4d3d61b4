# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils._breaking_point import (
    BreakingPointError, bracket, fit_linear, headroom, next_step, predict_crossing, ramp_values, response_model,
    validate_spec,
)

LOSS = {'scenario_type': 'packet_loss', 'parameter': 'loss_percent', 'start': 0, 'stop': 40, 'resolution': 2,
        'coarse_steps': 5, 'max_experiments': 10, 'time_budget': 1000, 'experiment_seconds': 60}


def search_against(knee, spec=LOSS, limit=30):
    """Run the search against a service that passes up to ``knee`` and fails above it."""
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
