# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Everything a chaos run can check before its first fault, as pure functions of plain data.

The chaos_suite role calls these (through the ``magsasa.chaos`` preflight filters) once, before the
first experiment, so a bad catalog entry, option, SLO or setting stops the whole run with nothing
injected, and every problem is reported at once, each naming the scenario, the field and the value.

* validate_run(run, spec) -> (problems, selected): the selection, each selected scenario's shape and
  fault options (against the modules' own documented argument specs), SLO targets, stop
  conditions, the probe options, blast radius, timing and the target URL.
* fault_parameters(defaults, parameters) -> the options a fault module receives.
* plan_checks(selected, targets, fault_defaults, types) -> what to probe and check on each target.
* fault_needs(module, params) -> what a fault needs on its target (tools, drivers, qdiscs, units).
* capability_gaps(needs, found) -> why a target cannot run the fault and how to fix it.
* capability_skips(checks, capabilities) -> scenario -> why its targets cannot run it, and the fix.
* check_mode_problems(checks, results) -> what the fault modules said of the options in check mode.
* preflight_problems(checks, preflights, skips) -> the same, from chaos_preflight's verdicts per host.
"""

import json

from ansible.module_utils.common.parameters import DEFAULT_TYPE_VALIDATORS
from ansible.module_utils.six import string_types
from ansible.module_utils.six.moves.urllib.parse import urlparse
from ansible_collections.magsasa.chaos.plugins.module_utils._catalog import INTENSITIES, STOP_CONDITION_MINIMUM
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import is_secret_key

# Options the experiment sets itself on every fault module (the lifecycle of doc_fragments/fault.py
# the role controls); a scenario cannot set them through `parameters`.
FAULT_OPTIONS_SET_BY_THE_EXPERIMENT = ('state', 'duration', 'fault_id', 'lease', 'start_at', 'state_dir')
# Options of resilience_probe the experiment sets itself; the rest are the user's (chaos_probe).
PROBE_OPTIONS_SET_BY_THE_EXPERIMENT = (
    'state', 'probe_id', 'url', 'interval', 'samples', 'max_lifetime', 'fail_on_unhealthy', 'stop_conditions',
    'baseline_start', 'fault_start', 'fault_end', 'observe_end', 'recovery_samples', 'recovery_timeout',
)
# Keys of chaos_fault_defaults.<type> that speak to the role, not to the module.
INVENTORY_ONLY_KEYS = ('unavailable',)
# Lower bounds of the stop conditions: what _metrics.evaluate_stop_condition accepts.
ABORT_MINIMUM = STOP_CONDITION_MINIMUM
TC_ONLY_NETEM_OPTIONS = ('delay_ms', 'jitter_ms', 'correlation_percent', 'corrupt_percent', 'duplicate_percent',
                         'reorder_percent', 'rate')


def show(value, name=''):
    """A value as the user wrote it, for a message (secrets hidden, long values cut)."""
    if name and is_secret_key(name) and value not in (None, ''):
        return '(hidden)'
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + '...'


def type_name(value):
    """The YAML-ish name of a value's type (Ansible hands filters its own dict and list subclasses)."""
    if value is None:
        return 'null'
    for kind, name in ((bool, 'bool'), (string_types, 'str'), (int, 'int'), (float, 'float'), (list, 'list'),
                       (dict, 'dict')):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fault_parameters(defaults, parameters):
    """The options a fault module receives: the inventory's defaults for the type overlaid with the
    scenario's own, minus the keys that only speak to the role. Values pass through unchanged."""
    merged = dict(defaults or {})
    merged.update(parameters or {})
    return dict((k, v) for k, v in merged.items() if k not in INVENTORY_ONLY_KEYS)


def check_option(where, name, value, spec):
    """Problems of one option value against its documented spec (type, choices, list elements,
    sub-options), in the words of the option's own spec."""
    if value is None:
        return []
    kind = spec.get('type', 'str')
    validator = DEFAULT_TYPE_VALIDATORS.get(kind)
    label = '%s.%s' % (where, name)
    if kind == 'str' and not isinstance(value, string_types) and not is_number(value):
        return ['%s must be a str, got %s %s' % (label, type_name(value), show(value, name))]
    if validator is not None and kind != 'raw':
        try:
            converted = validator(value)
        except (TypeError, ValueError):
            article = 'an' if kind == 'int' else 'a'
            return ['%s must be %s %s, got %s %s' % (label, article, kind, type_name(value), show(value, name))]
    else:
        converted = value
    problems = []
    choices = spec.get('choices')
    if choices and kind != 'list' and converted not in choices:
        problems.append('%s must be one of %s, got %s' % (label, ', '.join(str(c) for c in choices), show(value, name)))
    if kind == 'list':
        elements = spec.get('elements')
        for index, element in enumerate(converted):
            if elements:
                problems += check_option(label, '%d' % index, element,
                                         dict(type=elements, choices=choices, suboptions=spec.get('suboptions')))
    if kind == 'dict' and spec.get('suboptions'):
        problems += check_options(label, converted, spec['suboptions'])
    return problems


def check_options(where, values, specs, reserved=(), module=None):
    """Problems of a dict of options against a module's documented options: unknown keys (named,
    with the known ones), keys the role sets itself, then each value's type and choices."""
    if not isinstance(values, dict):
        return ['%s must be a mapping of options, got %s %s' % (where, type_name(values), show(values))]
    problems = unknown_options(where, values, specs, reserved, module)
    for name in sorted(values, key=str):
        if name in specs and name not in reserved:
            problems += check_option(where, name, values[name], specs[name])
    return problems


def unknown_options(where, values, specs, reserved=(), module=None):
    """Problems of the keys alone: options the module does not have (named, with the ones it
    has) and options the experiment sets itself."""
    problems = []
    known = sorted(name for name in specs if name not in reserved)
    owner = ' of %s' % module if module else ''
    for name in sorted(values, key=str):
        if name in reserved:
            problems.append('%s.%s is set by the experiment itself and cannot be given here, got %s'
                            % (where, name, show(values[name], name)))
        elif name not in specs:
            problems.append('%s.%s is not an option%s; known options: %s' % (where, name, owner, ', '.join(known)))
    return problems


def resolve_selection(run):
    """(problems, selected scenarios) for the group, scenario name or intensity the run asks for."""
    scenarios = [s for s in run.get('scenarios') or [] if isinstance(s, dict)]
    groups = run.get('groups') if isinstance(run.get('groups'), dict) else {}
    by_name = dict((s.get('name'), s) for s in scenarios)
    known = ', '.join(str(s.get('name')) for s in scenarios)
    if run.get('scenario'):
        if run['scenario'] not in by_name:
            return ["chaos_scenario '%s' is not in the catalog; known: %s" % (run['scenario'], known)], []
        return [], [by_name[run['scenario']]]
    if run.get('intensity'):
        if run['intensity'] not in INTENSITIES:
            return ["chaos_intensity '%s' is not an intensity; use one of %s"
                    % (run['intensity'], ', '.join(INTENSITIES))], []
        selected = [s for s in scenarios if s.get('intensity') == run['intensity']]
        if not selected:
            return ["chaos_intensity '%s' matches no scenario of the catalog" % run['intensity']], []
        return [], selected
    group = run.get('group')
    if group not in groups:
        return ["chaos_group '%s' is not a scenario group; known: %s" % (group, ', '.join(sorted(groups)))], []
    names = groups[group]
    if not isinstance(names, list) or not names or not all(isinstance(n, string_types) for n in names):
        return ["chaos_suite_groups.%s must be a non-empty list of scenario names, got %s" % (group, show(names))], []
    problems = []
    absent = [n for n in names if n not in by_name]
    if absent:
        problems.append("chaos_group '%s' names scenarios that are not in the catalog: %s; known: %s"
                        % (group, ', '.join(absent), known))
    repeated = sorted(set(n for n in names if names.count(n) > 1))
    if repeated:
        problems.append("chaos_suite_groups.%s lists %s more than once" % (group, ', '.join(repeated)))
    return problems, [by_name[n] for n in names if n in by_name]


def check_catalog(scenarios):
    if not isinstance(scenarios, list):
        return ['chaos_suite_scenarios must be a list of scenarios, got %s %s' % (type_name(scenarios), show(scenarios))]
    problems = []
    seen = {}
    for index, scenario in enumerate(scenarios):
        if not isinstance(scenario, dict):
            problems.append('chaos_suite_scenarios[%d] must be a mapping (name, type, targets, duration, parameters), '
                            'got %s %s' % (index, type_name(scenario), show(scenario)))
            continue
        seen.setdefault(scenario.get('name'), []).append(index)
    for name, indexes in sorted(seen.items(), key=lambda item: str(item[0])):
        if len(indexes) > 1:
            problems.append("scenario name %s appears %d times in chaos_suite_scenarios (entries %s); names must be "
                            "unique" % (show(name), len(indexes), ', '.join(str(i) for i in indexes)))
    return problems


def check_scenario(scenario, spec, fault_defaults):
    """Problems of one selected scenario: its fields (against the experiment role's argument spec),
    its fault options (against its module's documented options) and its probe and SLO overrides."""
    name = scenario.get('name')
    where = "scenario '%s'" % (name,)
    fields = spec['scenario_fields']
    problems = []
    for field in sorted(scenario, key=str):
        if field not in fields:
            problems.append('%s: field %s is not a scenario field; known: %s'
                            % (where, show(field), ', '.join(sorted(fields))))
    for field, field_spec in sorted(fields.items()):
        value = scenario.get(field)
        if value is None:
            if field_spec.get('required'):
                problems.append('%s: %s is required' % (where, field))
            continue
        if field_spec.get('type') in ('dict', 'list') and type_name(value) != field_spec['type']:
            problems.append('%s: %s must be a %s, got %s %s' % (where, field, 'mapping' if field_spec['type'] == 'dict'
                                                                else 'list', type_name(value), show(value)))
            continue
        if field == 'duration':
            if not is_number(value) or value <= 0:
                problems.append('%s: duration must be a number of seconds greater than 0, got %s %s'
                                % (where, type_name(value), show(value)))
            continue
        problems += [p.replace('scenario.', '%s: ' % where, 1) for p in
                     check_option('scenario', field, value, dict(field_spec, suboptions=None))]
    if not isinstance(name, string_types) or not name.strip():
        problems.append('%s: name must be a non-empty string' % where)
    if isinstance(scenario.get('targets'), string_types) and not scenario['targets'].strip():
        problems.append('%s: targets must name an inventory group or host pattern, got ""' % where)
    kind = scenario.get('type')
    if kind == 'custom':
        if not scenario.get('tasks_file'):
            problems.append('%s: type custom needs tasks_file (the task file that injects the fault)' % where)
    elif kind in spec['types']:
        problems += check_fault_options(where, scenario, spec, fault_defaults)
    if isinstance(scenario.get('probe'), dict):
        problems += check_options('%s: probe' % where, scenario['probe'], spec['probe_options'],
                                  reserved=PROBE_OPTIONS_SET_BY_THE_EXPERIMENT, module='magsasa.chaos.resilience_probe')
    if isinstance(scenario.get('slo'), dict):
        problems += check_slo('%s: slo' % where, scenario['slo'], spec['slo_metrics'])
    return problems


def check_fault_options(where, scenario, spec, fault_defaults):
    kind = scenario['type']
    module = spec['types'][kind]['module']
    options = spec['module_options'].get(module)
    if options is None:
        return ['%s: the fault module %s of type %s is not installed' % (where, module, kind)]
    problems = []
    parameters = scenario.get('parameters')
    if parameters is not None and not isinstance(parameters, dict):
        # The type error itself is reported with the scenario's fields.
        parameters = {}
    defaults = (fault_defaults or {}).get(kind) or {}
    if not isinstance(defaults, dict):
        return ['chaos_fault_defaults.%s must be a mapping of %s options, got %s %s'
                % (kind, module, type_name(defaults), show(defaults))]
    from_defaults = fault_parameters(defaults, {})
    problems += check_options('%s: parameters' % where, parameters or {}, options,
                              reserved=FAULT_OPTIONS_SET_BY_THE_EXPERIMENT, module=module)
    inherited = dict((k, v) for k, v in from_defaults.items() if k not in (parameters or {}))
    problems += check_options('%s: chaos_fault_defaults.%s' % (where, kind), inherited, options,
                              reserved=FAULT_OPTIONS_SET_BY_THE_EXPERIMENT, module=module)
    return problems


def check_slo(where, targets, metrics):
    if not isinstance(targets, dict):
        return ['%s must be a mapping of SLO targets (%s), got %s %s'
                % (where, ', '.join(metrics), type_name(targets), show(targets))]
    problems = []
    for metric in sorted(targets, key=str):
        value = targets[metric]
        label = '%s.%s' % (where, metric)
        if metric not in metrics:
            problems.append('%s is not an SLO metric; known: %s' % (label, ', '.join(metrics)))
        elif not is_number(value):
            problems.append('%s must be a number, got %s %s' % (label, type_name(value), show(value)))
        elif metric.endswith('_percent') and not 0 <= value <= 100:
            problems.append('%s must be 0-100 percent, got %s' % (label, show(value)))
        elif not metric.endswith('_percent') and value <= 0:
            problems.append('%s must be greater than 0, got %s' % (label, show(value)))
    return problems


def check_abort(abort, spec):
    where = 'chaos_abort'
    problems = check_options(where, abort, spec, module='the stop conditions of magsasa.chaos.resilience_probe')
    if problems:
        return problems
    for name, value in sorted(abort.items()):
        if not is_number(value):
            continue
        if name.endswith('_percent') and not 0 <= value <= 100:
            problems.append('%s.%s must be 0-100 percent, got %s' % (where, name, show(value)))
        elif name in ABORT_MINIMUM and value < ABORT_MINIMUM[name]:
            problems.append('%s.%s must be at least %d, got %s' % (where, name, ABORT_MINIMUM[name], show(value)))
    return problems


def check_settings(run, spec):
    """Problems of the run-wide settings (inventory group_vars or -e)."""
    problems = []
    url = run.get('target_url')
    parsed = urlparse(url) if isinstance(url, string_types) else None
    if parsed is None or parsed.scheme not in ('http', 'https') or not parsed.hostname:
        problems.append('chaos_target_url must be an http(s) URL of the service under test, got %s' % show(url))
    else:
        try:
            parsed.port
        except ValueError:
            problems.append('chaos_target_url has an invalid port, got %s' % show(url))
    max_hosts = run.get('max_hosts')
    if isinstance(max_hosts, string_types) and max_hosts.strip().isdigit():
        max_hosts = int(max_hosts)
    if not isinstance(max_hosts, int) or isinstance(max_hosts, bool) or max_hosts < 1:
        problems.append('chaos_max_hosts must be a whole number of hosts, at least 1, got %s' % show(run.get('max_hosts')))
    problems += check_slo('chaos_slo', run.get('slo'), spec['slo_metrics'])
    problems += check_abort(run.get('abort'), spec['abort_options'])
    probe = run.get('probe')
    problems += check_options('chaos_probe', probe if probe is not None else {}, spec['probe_options'],
                              reserved=PROBE_OPTIONS_SET_BY_THE_EXPERIMENT, module='magsasa.chaos.resilience_probe')
    fault_defaults = run.get('fault_defaults')
    if fault_defaults is not None and not isinstance(fault_defaults, dict):
        problems.append('chaos_fault_defaults must be a mapping of scenario type to options, got %s %s'
                        % (type_name(fault_defaults), show(fault_defaults)))
    elif fault_defaults:
        for kind in sorted(fault_defaults, key=str):
            if kind not in spec['types']:
                problems.append('chaos_fault_defaults.%s is not a scenario type; known: %s'
                                % (kind, ', '.join(sorted(spec['types']))))
    problems += check_timing(run.get('timing') or {})
    return problems


def check_timing(timing):
    problems = []
    rules = (
        ('chaos_experiment_probe_interval', 'probe_interval', 0, 'greater than 0 seconds'),
        ('chaos_experiment_tick', 'tick', 0, 'greater than 0 seconds'),
        ('chaos_experiment_lease', 'lease', 0, 'greater than 0 seconds'),
        ('chaos_experiment_recovery_timeout', 'recovery_timeout', 0, 'greater than 0 seconds'),
        ('chaos_experiment_recovery_samples', 'recovery_samples', 0, 'at least 1'),
        ('chaos_experiment_steady_samples', 'steady_samples', 0, 'at least 1'),
        ('chaos_experiment_baseline_seconds', 'baseline_seconds', -1, '0 or more seconds'),
    )
    for variable, key, floor, wanted in rules:
        if key not in timing:
            continue
        value = timing[key]
        if isinstance(value, string_types):
            try:
                value = float(value)
            except ValueError:
                pass
        if not is_number(value) or value <= floor:
            problems.append('%s must be %s, got %s' % (variable, wanted, show(timing[key])))
    lease, tick = timing.get('lease'), timing.get('tick')
    if not problems and lease is not None and tick is not None and float(lease) <= float(tick):
        problems.append('chaos_experiment_lease (%s) must exceed chaos_experiment_tick (%s): the lease is renewed '
                        'every tick' % (show(lease), show(tick)))
    return problems


def validate_run(run, spec):
    """(problems, selected scenarios) of a whole run, before anything is injected.

    ``run``: scenarios, groups, group, scenario, intensity (the selection), fault_defaults, slo,
    abort, probe, max_hosts, target_url, timing. ``spec``: scenario_fields (the experiment role's
    argument spec of a scenario), types (scenario type -> module), module_options (module ->
    documented options), probe_options, abort_options, slo_metrics.
    """
    problems = check_catalog(run.get('scenarios'))
    selected = []
    if not isinstance(run.get('groups'), dict):
        problems.append('chaos_suite_groups must be a mapping of group name to scenario names, got %s %s'
                        % (type_name(run.get('groups')), show(run.get('groups'))))
    elif isinstance(run.get('scenarios'), list):
        selection_problems, selected = resolve_selection(run)
        problems += selection_problems
    fault_defaults = run.get('fault_defaults') if isinstance(run.get('fault_defaults'), dict) else {}
    for scenario in selected:
        problems += check_scenario(scenario, spec, fault_defaults)
    problems += check_settings(run, spec)
    # A scenario selected twice would report its problems twice: say each once, in order.
    unique = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    return unique, selected


def fault_needs(module, params):
    """What a fault of ``module`` with ``params`` needs on its target, as plain requirements:
    ``{'tool'|'python_module'|'qdisc'|'systemd_unit': name, 'fix': what to do}``."""
    needs = []
    if module.endswith('.chaos_netem'):
        backend = params.get('backend') or 'auto'
        shaped = any(params.get(option) for option in TC_ONLY_NETEM_OPTIONS)
        if backend == 'tc':
            needs.append(dict(tool='tc', fix='install iproute2'))
            needs.append(dict(qdisc='netem', fix='load the kernel module sch_netem (modprobe sch_netem; some '
                                                 'distributions ship it in linux-modules-extra), or use backend '
                                                 'nfqueue or auto'))
        elif backend == 'nftables' or (backend == 'auto' and not shaped):
            needs.append(dict(tool='nft', fix='install nftables'))
        # Shaping with backend auto or nfqueue: the module picks and probes its way itself (tc where the
        # kernel has sch_netem, the userspace delayer otherwise); its check-mode run says what is missing.
        needs.append(dict(tool='ip', fix='install iproute2'))
    elif module.endswith('.chaos_cpu') and params.get('engine') == 'stress-ng':
        needs.append(dict(tool='stress-ng', fix='install stress-ng, or use engine auto or python'))
    elif module.endswith('.chaos_container'):
        needs.append(dict(python_module='docker', fix='install the Docker SDK for Python on the target (pip install docker)'))
    elif module.endswith('.chaos_process'):
        if params.get('systemd_unit'):
            needs.append(dict(tool='systemctl', fix='run it on a host with systemd, or name the process another way'))
            needs.append(dict(systemd_unit=params['systemd_unit'], fix='name a unit systemd knows (systemctl list-units)'))
        if params.get('supervisor_program'):
            needs.append(dict(tool=params.get('supervisorctl_path') or 'supervisorctl',
                              fix='install supervisor (pip install supervisor) or set supervisorctl_path'))
    elif module.endswith('.chaos_db'):
        engine = params.get('engine')
        if engine == 'postgresql':
            needs.append(dict(python_module='psycopg', fix='install the PostgreSQL driver psycopg on the target (pip install psycopg)'))
        elif engine in ('mysql', 'mariadb'):
            needs.append(dict(python_module='pymysql', fix='install the MySQL driver PyMySQL on the target (pip install PyMySQL)'))
        control = params.get('control') or 'datadir'
        if control == 'container':
            needs.append(dict(python_module='docker', fix='install the Docker SDK for Python on the target (pip install docker)'))
        elif control == 'systemd' and params.get('systemd_unit'):
            needs.append(dict(tool='systemctl', fix='run it on a host with systemd, or use control datadir or container'))
            needs.append(dict(systemd_unit=params['systemd_unit'], fix='name a unit systemd knows (systemctl list-units)'))
    return needs


def need_key(need):
    for kind in ('tool', 'python_module', 'qdisc', 'systemd_unit'):
        if kind in need:
            return kind, need[kind]
    raise ValueError('a need names one of tool, python_module, qdisc, systemd_unit: %r' % (need,))


def capability_gaps(needs, found):
    """Why a target cannot run a fault: one line per missing need, with its fix. ``found`` is what
    the chaos_capabilities module reported (``tools``, ``python_modules``, ``qdiscs``, ``systemd_units``)."""
    sections = dict(tool='tools', python_module='python_modules', qdisc='qdiscs', systemd_unit='systemd_units')
    words = dict(tool='%s is not installed', python_module='the Python module %s is not importable',
                 qdisc='the kernel cannot create a %s qdisc', systemd_unit='systemd does not know the unit %s')
    gaps = []
    for need in needs:
        kind, name = need_key(need)
        if not (found.get(sections[kind]) or {}).get(name):
            gaps.append('%s: %s' % (words[kind] % name, need['fix']))
    return gaps


def plan_checks(selected, targets, fault_defaults, types):
    """What preflight checks on the targets: ``checks`` (one per scenario and target host, with the
    module, its exact options and its needs) and ``needs`` (per host, the union to probe once).
    A scenario the inventory cannot serve at all (no hosts, ``unavailable``, nothing to hit) or a
    custom one is left to the experiment, which records why it skips it."""
    checks, needs = [], {}
    for scenario in selected:
        name, kind = scenario['name'], scenario['type']
        hosts = targets.get(name) or []
        defaults = (fault_defaults or {}).get(kind) or {}
        merged = dict(defaults, **(scenario.get('parameters') or {}))
        selectors = types[kind].get('needs_one_of') or []
        if (kind == 'custom' or not hosts or merged.get('unavailable')
                or (selectors and not set(selectors) & set(merged))):
            continue
        module = types[kind]['module']
        parameters = fault_parameters(defaults, scenario.get('parameters'))
        scenario_needs = fault_needs(module, parameters)
        for host in hosts:
            checks.append(dict(scenario=name, host=host, module=module, duration=scenario['duration'],
                               parameters=parameters, needs=scenario_needs))
            host_needs = needs.setdefault(host, dict(tools=[], python_modules=[], qdiscs=[], systemd_units=[]))
            for need in scenario_needs:
                kind_of_need, what = need_key(need)
                section = host_needs[kind_of_need + 's']
                if what not in section:
                    section.append(what)
    return dict(checks=checks, needs=needs)


def capability_skips(checks, capabilities):
    """scenario -> skip reason, for the scenarios a target cannot run. ``capabilities``: host ->
    what chaos_capabilities found there."""
    skips = {}
    for check in checks:
        gaps = capability_gaps(check['needs'], capabilities.get(check['host']) or {})
        if gaps and check['scenario'] not in skips:
            skips[check['scenario']] = 'cannot run on %s: %s' % (check['host'], '; '.join(gaps))
    return skips


def check_mode_problems(checks, results):
    """One problem per target whose fault module refused the scenario's options in check mode.
    ``results`` are aligned with ``checks``; a skipped check has no verdict."""
    problems = []
    for check, result in zip(checks, results):
        if not result or result.get('skipped'):
            continue
        if result.get('failed') or result.get('unreachable'):
            problems.append("scenario '%s' on %s: %s refused its options: %s"
                            % (check['scenario'], check['host'], check['module'],
                               result.get('msg') or 'failed without a message'))
    return problems


def preflight_problems(checks, preflights, skips):
    """``check_mode_problems`` for the verdicts of chaos_preflight: ``preflights`` maps each host to
    what chaos_preflight returned there, whose ``checks`` follow that host's checks in plan order.
    A scenario the run skips (``skips``) is not judged."""
    results, seen = [], {}
    for check in checks:
        host = check['host']
        index = seen[host] = seen.get(host, -1) + 1
        verdicts = (preflights.get(host) or {}).get('checks') or []
        verdict = verdicts[index] if index < len(verdicts) else None
        results.append(None if check['scenario'] in skips else verdict)
    return check_mode_problems(checks, results)
