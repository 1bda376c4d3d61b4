# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os

import pytest
import yaml

import importlib

from ansible_collections.magsasa.chaos.plugins.filter import preflight

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
ROLE = os.path.join(COLLECTION, 'roles', 'chaos_experiment')


def documented_options(module):
    """A module's documented options with its doc fragments' (what the plugin loader's docs give,
    read here without a running Ansible)."""
    try:
        source = importlib.import_module('ansible_collections.magsasa.chaos.plugins.modules.' + module.split('.')[-1])
    except ImportError:
        return None
    doc = yaml.safe_load(source.DOCUMENTATION)
    options = {}
    for fragment in doc.get('extends_documentation_fragment') or []:
        # magsasa.chaos.<fragment> or magsasa.chaos.<fragment>.<variant>
        name, variant = (fragment.split('.')[2:] + ['documentation'])[:2]
        fragment_module = importlib.import_module('ansible_collections.magsasa.chaos.plugins.doc_fragments.' + name)
        text = getattr(fragment_module.ModuleDocFragment, variant.upper())
        options.update(yaml.safe_load(text).get('options') or {})
    options.update(doc['options'])
    return options


@pytest.fixture
def role(monkeypatch):
    monkeypatch.setattr(preflight, 'documented_options', documented_options)
    with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as handle:
        spec = yaml.safe_load(handle)
    with open(os.path.join(ROLE, 'vars', 'main.yml')) as handle:
        types = yaml.safe_load(handle)['chaos_experiment_types']
    return spec['argument_specs']['main']['options']['chaos_experiment_scenario']['options'], types


def test_every_scenario_type_has_its_modules_documented_options(role):
    fields, types = role
    spec = preflight.run_spec(fields, types)
    for kind, entry in types.items():
        if entry['module']:
            assert 'state' in spec['module_options'][entry['module']], kind
    assert {'workers', 'load_percent', 'cpu_affinity', 'engine', 'intensity'} <= set(spec['module_options']['magsasa.chaos.chaos_cpu'])
    # Options the hand-kept task files once left out reach chaos_db now.
    assert {'tls', 'ca_path', 'intensity'} <= set(spec['module_options']['magsasa.chaos.chaos_db'])
    assert set(spec['abort_options']) == {'window', 'max_error_rate_percent', 'max_consecutive_failures'}
    assert documented_options('magsasa.chaos.no_such_module') is None


def test_the_catalog_shipped_with_the_role_is_valid(role):
    fields, types = role
    with open(os.path.join(COLLECTION, 'roles', 'chaos_suite', 'defaults', 'main.yml')) as handle:
        suite = yaml.safe_load(handle)
    for group in suite['chaos_suite_groups']:
        run = dict(scenarios=suite['chaos_suite_scenarios'], groups=suite['chaos_suite_groups'], group=group,
                   scenario='', intensity='', fault_defaults={'disk': {'path': '/var/tmp'}},
                   slo=dict(mttr_seconds=30), abort=dict(window=50), probe={}, max_hosts=1,
                   target_url='http://127.0.0.1:8080/api/health', timing={})
        result = preflight.validate_scenarios(run, fields, types)
        assert result['problems'] == [], group
        assert [s['name'] for s in result['selected']] == suite['chaos_suite_groups'][group]
