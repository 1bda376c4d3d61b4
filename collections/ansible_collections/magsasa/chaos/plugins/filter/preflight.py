# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run's preflight for playbooks: thin wrappers over plugin_utils/_preflight.py, with the
fault options read from the modules' own documentation (plugin_utils/_module_options.py)."""

from ansible.errors import AnsibleFilterError
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _preflight
from ansible_collections.magsasa.chaos.plugins.plugin_utils._module_options import documented_options
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import METRICS

PROBE_MODULE = 'magsasa.chaos.resilience_probe'


def run_spec(scenario_fields, types):
    """What validate_run checks against: the role's scenario fields, and every option list read
    from the modules' documentation."""
    modules = sorted(set(t['module'] for t in types.values() if t.get('module')))
    probe = documented_options(PROBE_MODULE)
    if probe is None:
        raise AnsibleFilterError('magsasa.chaos.validate_scenarios: %s is not installed' % PROBE_MODULE)
    return dict(
        scenario_fields=scenario_fields,
        types=types,
        module_options=dict((m, documented_options(m)) for m in modules if documented_options(m) is not None),
        probe_options=probe,
        abort_options=probe['stop_conditions']['suboptions'],
        slo_metrics=[target for dummy, target, dummy, dummy, dummy in METRICS],
    )


def validate_scenarios(run, scenario_fields, types):
    """``{'problems': [...], 'selected': [...]}`` for a whole run (see _preflight.validate_run)."""
    if not isinstance(run, dict):
        raise AnsibleFilterError('magsasa.chaos.validate_scenarios: the input must be a dict, got %r' % (run,))
    problems, selected = _preflight.validate_run(run, run_spec(scenario_fields, types))
    return dict(problems=problems, selected=selected)


def preflight_plan(selected, targets, fault_defaults, types):
    """``{'checks', 'needs'}``: what to probe and check on each target (see _preflight.plan_checks)."""
    return _preflight.plan_checks(selected, targets, fault_defaults, types)


def capability_skips(checks, capabilities):
    """Scenario name -> why its targets cannot run it, with the fix."""
    return _preflight.capability_skips(checks, capabilities)


def preflight_problems(checks, preflights, skips=None):
    """One line per target whose fault module refused its options, from chaos_preflight's verdicts."""
    return _preflight.preflight_problems(checks, preflights, skips or {})


def fault_parameters(defaults, parameters=None):
    """The options a fault module receives: inventory defaults overlaid with the scenario's, as is."""
    if not isinstance(defaults, dict) or not isinstance(parameters or {}, dict):
        raise AnsibleFilterError('magsasa.chaos.fault_parameters: defaults and parameters must be dicts, got %r and %r'
                                 % (defaults, parameters))
    return _preflight.fault_parameters(defaults, parameters)


class FilterModule(object):

    def filters(self):
        return {
            'validate_scenarios': validate_scenarios,
            'preflight_plan': preflight_plan,
            'capability_skips': capability_skips,
            'preflight_problems': preflight_problems,
            'fault_parameters': fault_parameters,
        }
