# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.magsasa.chaos.plugins.filter.catalog import chaos_catalog
from ansible_collections.magsasa.chaos.plugins.module_utils import _catalog, _metrics
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _preflight, _report

OK = {'ok': True, 'latency_ms': 1.0}
FAILED = {'ok': False, 'error': 'refused'}


def samples(*oks):
    return [dict(OK if ok else FAILED, sent=float(index)) for index, ok in enumerate(oks)]


def test_every_user_of_the_slo_metrics_reads_the_one_list():
    names = [(target, metric) for target, metric, dummy, dummy, dummy in _catalog.SLO_METRICS]
    assert [(t, m) for t, m, dummy in _metrics.SLO_TARGETS] == names
    assert [(t, m) for m, t, dummy, dummy, dummy in _report.METRICS] == names
    assert sorted(_catalog.SLO_DEFAULTS) == sorted(t for t, dummy in names)


def test_the_default_slo_passes_its_own_checks():
    verdict = _metrics.evaluate_slo({'mttr_seconds': None, 'error_rate_percent': 0.0, 'availability_percent': 100.0,
                                     'latency_degradation_ms': 0.0, 'recovery_seconds': 0.0, 'samples_failed': 0},
                                    dict(_catalog.SLO_DEFAULTS))
    assert verdict['verdict'] == 'pass' and len(verdict['checks']) == len(_catalog.SLO_METRICS)


@pytest.mark.parametrize('name', sorted(_catalog.STOP_CONDITION_MINIMUM))
def test_preflight_refuses_exactly_what_the_stop_condition_refuses(name):
    minimum = _catalog.STOP_CONDITION_MINIMUM[name]
    assert _preflight.ABORT_MINIMUM[name] == minimum
    _metrics.evaluate_stop_condition(samples(True, False, False), **{name: minimum})
    with pytest.raises(_metrics.MetricsError, match='%s must be an integer >= %d' % (name, minimum)):
        _metrics.evaluate_stop_condition(samples(True, False, False), **{name: minimum - 1})


@pytest.mark.parametrize('name, expected', [
    ('intensities', ['light', 'medium', 'heavy']),
    ('slo_targets', ['mttr_seconds', 'max_error_rate_percent', 'min_availability_percent',
                     'max_latency_degradation_ms', 'max_recovery_seconds']),
    ('slo_metric_names', ['mttr_seconds', 'error_rate_percent', 'availability_percent', 'latency_degradation_ms',
                          'recovery_seconds']),
    ('slo_defaults', {'mttr_seconds': 30, 'max_error_rate_percent': 5, 'min_availability_percent': 95,
                      'max_latency_degradation_ms': 500, 'max_recovery_seconds': 10}),
    ('stop_condition_minimum', {'window': 1, 'max_consecutive_failures': 2}),
])
def test_the_filter_gives_each_list(name, expected):
    assert chaos_catalog(name) == expected


def test_the_filter_gives_copies():
    chaos_catalog('slo_defaults')['mttr_seconds'] = 0
    assert chaos_catalog('slo_defaults')['mttr_seconds'] == 30


def test_an_unknown_list_is_named_with_the_choices():
    with pytest.raises(AnsibleFilterError, match="'presets' is not a list of the catalog; use one of intensities, "):
        chaos_catalog('presets')


ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles')


@pytest.mark.parametrize('role, path', [
    ('chaos_experiment', ('argument_specs', 'main', 'options', 'chaos_experiment_scenario', 'options', 'intensity')),
    ('chaos_suite', ('argument_specs', 'main', 'options', 'chaos_suite_intensity')),
])
def test_the_roles_argument_specs_offer_the_catalog_intensities(role, path):
    """Argument specs are static YAML: they repeat the list, and this keeps them equal to it."""
    with open(os.path.join(ROLES, role, 'meta', 'argument_specs.yml')) as handle:
        spec = yaml.safe_load(handle)
    for key in path:
        spec = spec[key]
    assert [c for c in spec['choices'] if c] == list(_catalog.INTENSITIES)
