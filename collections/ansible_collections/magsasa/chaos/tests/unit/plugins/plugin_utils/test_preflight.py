# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import copy

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils import _preflight as pf

CPU = 'magsasa.chaos.chaos_cpu'
NETEM = 'magsasa.chaos.chaos_netem'
DB = 'magsasa.chaos.chaos_db'
LIFECYCLE = dict(state=dict(type='str', choices=['present', 'absent']), duration=dict(type='float'),
                 fault_id=dict(type='str'), lease=dict(type='float'), state_dir=dict(type='path'),
                 max_duration=dict(type='float'))
SPEC = dict(
    scenario_fields=dict(
        name=dict(type='str', required=True), type=dict(type='str', required=True, choices=['cpu', 'packet_loss', 'database', 'custom']),
        intensity=dict(type='str', choices=['light', 'medium', 'heavy']), targets=dict(type='str', required=True),
        duration=dict(type='int', required=True), parameters=dict(type='dict'), tasks_file=dict(type='str'),
        probe=dict(type='dict'), slo=dict(type='dict')),
    types=dict(cpu=dict(module=CPU), packet_loss=dict(module=NETEM), database=dict(module=DB, needs_one_of=['data_dir']),
               custom=dict(module='')),
    module_options={
        CPU: dict(LIFECYCLE, workers=dict(type='int'), load_percent=dict(type='int'),
                  engine=dict(type='str', choices=['auto', 'stress-ng', 'python']), cpu_affinity=dict(type='list', elements='int')),
        NETEM: dict(LIFECYCLE, loss_percent=dict(type='float'), delay_ms=dict(type='float'), backend=dict(type='str', choices=['auto', 'tc', 'nftables']),
                    interface=dict(type='str'), ports=dict(type='list', elements='int'), partition=dict(type='bool')),
        DB: dict(LIFECYCLE, engine=dict(type='str'), data_dir=dict(type='path'), control=dict(type='str'),
                 login_password=dict(type='str'), login_port=dict(type='int')),
    },
    probe_options=dict(state=dict(type='str'), url=dict(type='str'), headers=dict(type='dict'), method=dict(type='str'),
                       timeout=dict(type='float'), validate_certs=dict(type='bool'), samples=dict(type='int')),
    abort_options=dict(window=dict(type='int'), max_error_rate_percent=dict(type='float'), max_consecutive_failures=dict(type='int')),
    slo_metrics=['mttr_seconds', 'max_error_rate_percent', 'min_availability_percent', 'max_latency_degradation_ms',
                 'max_recovery_seconds'],
)


def good_run():
    return dict(
        scenarios=[dict(name='Light CPU Stress', type='cpu', intensity='light', targets='app', duration=15,
                        parameters=dict(workers=2, load_percent=80)),
                   dict(name='Light Packet Loss', type='packet_loss', intensity='light', targets='app', duration=15,
                        parameters=dict(loss_percent=5))],
        groups=dict(smoke_test=['Light CPU Stress', 'Light Packet Loss']), group='smoke_test', scenario='', intensity='',
        fault_defaults=dict(packet_loss=dict(interface='lo', backend='nftables')),
        slo=dict(mttr_seconds=30, max_error_rate_percent=5, min_availability_percent=95), abort=dict(window=50, max_consecutive_failures=600),
        probe=dict(headers={'Authorization': 'Bearer x'}), max_hosts=1, target_url='http://127.0.0.1:8080/api/health',
        timing=dict(probe_interval=0.1, tick=3, lease=15, recovery_timeout=30, recovery_samples=3, steady_samples=5, baseline_seconds=5),
    )


def test_a_good_run_has_no_problems_and_keeps_the_group_order():
    problems, selected = pf.validate_run(good_run(), SPEC)
    assert problems == []
    assert [s['name'] for s in selected] == ['Light CPU Stress', 'Light Packet Loss']


def first_cpu(run):
    return run['scenarios'][0]


# (how to break a good run, the words the one problem must contain)
BAD = [
    (lambda r: first_cpu(r)['parameters'].update(foo=1),
     ["parameters.foo is not an option of magsasa.chaos.chaos_cpu",
      "known options: cpu_affinity, engine, load_percent, max_duration, workers"]),
    (lambda r: first_cpu(r)['parameters'].update(duration=5), ['parameters.duration is set by the experiment itself', 'got 5']),
    (lambda r: first_cpu(r).update(parameters='workers=2'), ["scenario 'Light CPU Stress': parameters must be a mapping, got str \"workers=2\""]),
    (lambda r: first_cpu(r).update(parameters=[1]), ['parameters must be a mapping, got list']),
    (lambda r: first_cpu(r)['parameters'].update(workers='many'), ['parameters.workers must be an int, got str "many"']),
    (lambda r: first_cpu(r)['parameters'].update(engine='gpu'), ['parameters.engine must be one of auto, stress-ng, python, got "gpu"']),
    (lambda r: first_cpu(r)['parameters'].update(cpu_affinity=['x']), ['parameters.cpu_affinity.0 must be an int, got str "x"']),
    (lambda r: first_cpu(r).update(duration=0), ['duration must be a number of seconds greater than 0, got int 0']),
    (lambda r: first_cpu(r).update(duration=-5), ['duration must be a number of seconds greater than 0, got int -5']),
    (lambda r: first_cpu(r).update(duration='30s'), ['duration must be a number of seconds greater than 0, got str "30s"']),
    (lambda r: first_cpu(r).update(duration=True), ['duration must be a number of seconds greater than 0, got bool true']),
    (lambda r: first_cpu(r).pop('targets'), ["'Light CPU Stress': targets is required"]),
    (lambda r: first_cpu(r).update(targets=''), ['targets must name an inventory group or host pattern']),
    (lambda r: first_cpu(r).update(type='gpu'), ['type must be one of cpu, packet_loss, database, custom, got "gpu"']),
    (lambda r: first_cpu(r).update(intensity='extreme'), ['intensity must be one of light, medium, heavy, got "extreme"']),
    (lambda r: first_cpu(r).update(paramters={}), ['field "paramters" is not a scenario field; known: duration, intensity']),
    (lambda r: first_cpu(r).update(type='custom'), ['type custom needs tasks_file']),
    (lambda r: first_cpu(r).update(slo=dict(mttr_seconds=-1)), ['slo.mttr_seconds must be greater than 0, got -1']),
    (lambda r: first_cpu(r).update(slo='fast'), ['slo must be a mapping, got str "fast"']),
    (lambda r: first_cpu(r).update(probe=dict(url='http://x')), ['probe.url is set by the experiment itself']),
    (lambda r: first_cpu(r).update(probe=dict(verb='GET')), ['probe.verb is not an option of magsasa.chaos.resilience_probe']),
    (lambda r: r['scenarios'].append(dict(first_cpu(r))), ['scenario name "Light CPU Stress" appears 2 times in chaos_suite_scenarios (entries 0, 2)']),
    (lambda r: r['scenarios'].append('oops'), ['chaos_suite_scenarios[2] must be a mapping']),
    (lambda r: r.update(scenarios={'a': 1}), ['chaos_suite_scenarios must be a list of scenarios, got dict']),
    (lambda r: r.update(group='nightly'), ["chaos_group 'nightly' is not a scenario group; known: smoke_test"]),
    (lambda r: r['groups']['smoke_test'].append('Meltdown'), ["chaos_group 'smoke_test' names scenarios that are not in the catalog: Meltdown"]),
    (lambda r: r['groups']['smoke_test'].append('Light CPU Stress'), ['chaos_suite_groups.smoke_test lists Light CPU Stress more than once']),
    (lambda r: r['groups'].update(smoke_test='Light CPU Stress'), ['chaos_suite_groups.smoke_test must be a non-empty list']),
    (lambda r: r.update(scenario='Meltdown'), ["chaos_scenario 'Meltdown' is not in the catalog; known: Light CPU Stress, Light Packet Loss"]),
    (lambda r: r.update(intensity='extreme'), ["chaos_intensity 'extreme' is not an intensity"]),
    (lambda r: r.update(intensity='heavy'), ["chaos_intensity 'heavy' matches no scenario"]),
    (lambda r: r['slo'].update(min_availability_percent=150), ['chaos_slo.min_availability_percent must be 0-100 percent, got 150']),
    (lambda r: r['slo'].update(max_error_rate_percent=-1), ['chaos_slo.max_error_rate_percent must be 0-100 percent, got -1']),
    (lambda r: r['slo'].update(mttr_seconds=0), ['chaos_slo.mttr_seconds must be greater than 0, got 0']),
    (lambda r: r['slo'].update(mttr_seconds='fast'), ['chaos_slo.mttr_seconds must be a number, got str "fast"']),
    (lambda r: r['slo'].update(uptime=99), ['chaos_slo.uptime is not an SLO metric; known: mttr_seconds']),
    (lambda r: r.update(slo=[1]), ['chaos_slo must be a mapping of SLO targets']),
    (lambda r: r['abort'].update(window=-1), ['chaos_abort.window must be at least 1, got -1']),
    (lambda r: r['abort'].update(window=0), ['chaos_abort.window must be at least 1, got 0']),
    (lambda r: r['abort'].update(max_consecutive_failures=1), ['chaos_abort.max_consecutive_failures must be at least 2, got 1']),
    (lambda r: r['abort'].update(max_error_rate_percent=101), ['chaos_abort.max_error_rate_percent must be 0-100 percent, got 101']),
    (lambda r: r['abort'].update(windw=5), ['chaos_abort.windw is not an option of the stop conditions']),
    (lambda r: r['abort'].update(window='wide'), ['chaos_abort.window must be an int, got str "wide"']),
    (lambda r: r.update(max_hosts=0), ['chaos_max_hosts must be a whole number of hosts, at least 1, got 0']),
    (lambda r: r.update(max_hosts='all'), ['chaos_max_hosts must be a whole number of hosts, at least 1, got "all"']),
    (lambda r: r.update(target_url=''), ['chaos_target_url must be an http(s) URL of the service under test, got ""']),
    (lambda r: r.update(target_url='ftp://host/x'), ['chaos_target_url must be an http(s) URL', '"ftp://host/x"']),
    (lambda r: r.update(target_url='http://host:99999/'), ['chaos_target_url has an invalid port']),
    (lambda r: r['probe'].update(headers='x'), ['chaos_probe.headers must be a dict, got str "x"']),
    (lambda r: r['probe'].update(validate_certs='maybe'), ['chaos_probe.validate_certs must be a bool, got str "maybe"']),
    (lambda r: r['probe'].update(samples=3), ['chaos_probe.samples is set by the experiment itself']),
    (lambda r: r['fault_defaults'].update(packet_los={}), ['chaos_fault_defaults.packet_los is not a scenario type; known: cpu, custom']),
    (lambda r: r['fault_defaults']['packet_loss'].update(bogus=1), ['chaos_fault_defaults.packet_loss.bogus is not an option of magsasa.chaos.chaos_netem']),
    (lambda r: r['fault_defaults'].update(packet_loss='lo'), ['chaos_fault_defaults.packet_loss must be a mapping of magsasa.chaos.chaos_netem options']),
    (lambda r: r['timing'].update(lease=2), ['chaos_experiment_lease (2) must exceed chaos_experiment_tick (3)']),
    (lambda r: r['timing'].update(probe_interval=0), ['chaos_experiment_probe_interval must be greater than 0 seconds, got 0']),
    (lambda r: r['timing'].update(recovery_samples=0), ['chaos_experiment_recovery_samples must be at least 1, got 0']),
]


@pytest.mark.parametrize('breaks, words', BAD, ids=['bad-%02d' % i for i in range(len(BAD))])
def test_each_bad_input_is_one_problem_naming_its_field_and_value(breaks, words):
    run = good_run()
    breaks(run)
    problems, dummy = pf.validate_run(run, SPEC)
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems


def test_every_problem_is_reported_at_once():
    run = good_run()
    first_cpu(run)['parameters']['foo'] = 1
    run['slo']['min_availability_percent'] = 150
    run['abort']['window'] = -1
    run['scenarios'][1]['parameters'] = 'loss=5'
    problems, dummy = pf.validate_run(run, SPEC)
    assert len(problems) == 4, problems


def test_a_secret_value_is_never_shown():
    run = good_run()
    run['scenarios'].append(dict(name='DB', type='database', targets='db', duration=10,
                                 parameters=dict(data_dir='/x', login_password=['hunter2'])))
    run['groups']['smoke_test'].append('DB')
    problems, dummy = pf.validate_run(run, SPEC)
    assert problems and 'login_password' in problems[0] and 'hunter2' not in problems[0]


@pytest.mark.parametrize('value', [0, False, '', 0.0])
def test_falsy_options_pass_through_unchanged(value):
    assert pf.fault_parameters({'min_free_mb': 1024, 'unavailable': ''}, {'min_free_mb': value}) == {'min_free_mb': value}


def test_scenario_parameters_win_over_inventory_defaults_and_inventory_only_keys_stay_behind():
    merged = pf.fault_parameters({'interface': 'lo', 'backend': 'tc', 'unavailable': 'why'}, {'backend': 'nftables'})
    assert merged == {'interface': 'lo', 'backend': 'nftables'}


@pytest.mark.parametrize('module, params, needs', [
    (NETEM, dict(loss_percent=5), ['nft', 'ip']),
    (NETEM, dict(loss_percent=5, backend='tc'), ['tc', 'netem', 'ip']),
    (NETEM, dict(delay_ms=50), ['ip']),
    (NETEM, dict(delay_ms=50, backend='nfqueue'), ['ip']),
    (NETEM, dict(partition=True), ['nft', 'ip']),
    (CPU, dict(workers=2), []),
    (CPU, dict(workers=2, engine='stress-ng'), ['stress-ng']),
    ('magsasa.chaos.chaos_container', dict(name='api'), ['docker']),
    ('magsasa.chaos.chaos_process', dict(systemd_unit='api.service'), ['systemctl', 'api.service']),
    ('magsasa.chaos.chaos_process', dict(supervisor_program='api', supervisorctl_path='/v/supervisorctl'), ['/v/supervisorctl']),
    (DB, dict(engine='postgresql', control='container', container='db'), ['psycopg', 'docker']),
    (DB, dict(engine='mysql', control='systemd', systemd_unit='mariadb'), ['pymysql', 'systemctl', 'mariadb']),
])
def test_what_a_fault_needs_follows_its_options(module, params, needs):
    assert [pf.need_key(n)[1] for n in pf.fault_needs(module, params)] == needs


def test_a_missing_tool_skips_the_scenario_with_the_fix():
    checks = pf.plan_checks(good_run()['scenarios'], {'Light CPU Stress': ['h1'], 'Light Packet Loss': ['h1', 'h2']},
                            good_run()['fault_defaults'], SPEC['types'])
    assert checks['needs'] == {'h1': dict(tools=['nft', 'ip'], python_modules=[], qdiscs=[], systemd_units=[]),
                               'h2': dict(tools=['nft', 'ip'], python_modules=[], qdiscs=[], systemd_units=[])}
    found = {'h1': dict(tools={'nft': '/usr/sbin/nft', 'ip': '/sbin/ip'}), 'h2': dict(tools={'nft': None, 'ip': '/sbin/ip'})}
    skips = pf.capability_skips(checks['checks'], found)
    assert skips == {'Light Packet Loss': 'cannot run on h2: nft is not installed: install nftables'}


def test_scenarios_the_inventory_cannot_serve_are_not_checked_on_targets():
    run = good_run()
    run['scenarios'].append(dict(name='DB', type='database', targets='db', duration=10, parameters={}))
    plan = pf.plan_checks(run['scenarios'], {'Light CPU Stress': [], 'Light Packet Loss': ['h1'], 'DB': ['h1']},
                          {'packet_loss': {'unavailable': 'no network here'}}, SPEC['types'])
    assert plan['checks'] == []


def test_check_mode_refusals_name_scenario_host_and_module():
    checks = [dict(scenario='A', host='h1', module=CPU, needs=[]), dict(scenario='B', host='h1', module=CPU, needs=[])]
    results = [dict(failed=True, msg='`load_percent` must be 1-100, got 150'), dict(skipped=True)]
    assert pf.check_mode_problems(checks, results) == [
        "scenario 'A' on h1: magsasa.chaos.chaos_cpu refused its options: `load_percent` must be 1-100, got 150"]


def test_preflight_verdicts_are_matched_to_each_hosts_own_checks_in_plan_order():
    checks = [dict(scenario='A', host='h1', module=CPU, needs=[]), dict(scenario='A', host='h2', module=CPU, needs=[]),
              dict(scenario='B', host='h1', module=CPU, needs=[]), dict(scenario='C', host='h2', module=CPU, needs=[])]
    preflights = {
        'h1': dict(checks=[dict(changed=True), dict(failed=True, msg='B refused on h1')]),
        # h2 refused C, but C is skipped (another target lacks what it needs): no verdict on it
        'h2': dict(checks=[dict(failed=True, msg='A refused on h2'), dict(failed=True, msg='C refused on h2')]),
    }
    assert pf.preflight_problems(checks, preflights, {'C': 'cannot run on h3: ...'}) == [
        "scenario 'A' on h2: magsasa.chaos.chaos_cpu refused its options: A refused on h2",
        "scenario 'B' on h1: magsasa.chaos.chaos_cpu refused its options: B refused on h1"]
    # a host whose preflight never answered (unreachable, removed from the play) gives no verdict here
    assert pf.preflight_problems(checks, {'h1': preflights['h1']}, {}) == [
        "scenario 'B' on h1: magsasa.chaos.chaos_cpu refused its options: B refused on h1"]


def test_good_run_is_not_changed_by_validation():
    run = good_run()
    before = copy.deepcopy(run)
    pf.validate_run(run, SPEC)
    assert run == before
