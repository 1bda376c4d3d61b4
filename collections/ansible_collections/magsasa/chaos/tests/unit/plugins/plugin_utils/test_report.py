# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import copy
import json
import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils import _report as report_lib

T0 = 1764440000.0
TARGETS = {'mttr_seconds': 30, 'max_error_rate_percent': 5, 'min_availability_percent': 95,
           'max_latency_degradation_ms': 500, 'max_recovery_seconds': 10}
VALUES = {'mttr_seconds': 1.3, 'error_rate_percent': 3.2, 'availability_percent': 96.8,
          'latency_degradation_ms': 41.0, 'recovery_seconds': 0.4}
BAD_VALUES = {'mttr_seconds': 75.0, 'error_rate_percent': 22.5, 'availability_percent': 71.0,
              'latency_degradation_ms': 1900.0, 'recovery_seconds': 48.0}
OPS = {'mttr_seconds': '<=', 'error_rate_percent': '<=', 'availability_percent': '>=',
       'latency_degradation_ms': '<=', 'recovery_seconds': '<='}
TARGET_OF = {'mttr_seconds': 30, 'error_rate_percent': 5, 'availability_percent': 95,
             'latency_degradation_ms': 500, 'recovery_seconds': 10}
METRIC_KEYS = [m[0] for m in report_lib.METRICS]


def make_record(name='Light CPU Stress', status='completed', violated=(), fault_type='cpu', reason=None, offset=0.0):
    values = dict(VALUES)
    for metric in violated:
        values[metric] = BAD_VALUES[metric]
    checks = [{'metric': m, 'value': values[m], 'target': TARGET_OF[m], 'op': OPS[m], 'passed': m not in violated}
              for m in METRIC_KEYS]
    start = T0 + offset
    return {
        'name': name, 'type': fault_type, 'intensity': 'light', 'environment': 'staging',
        'inventory': 'inventories/staging', 'targets': ['app1', 'app2'],
        'target_url': 'http://127.0.0.1:8080/api/health', 'status': status, 'reason': reason,
        'fault': {'module': 'magsasa.chaos.chaos_%s' % fault_type, 'fault_ids': ['%s-1' % fault_type],
                  'started_at': start, 'ended_at': start + 30.4, 'planned_duration': 30,
                  'parameters': {'workers': 2}},
        'window': {'baseline_start': start - 5, 'fault_start': start, 'fault_end': start + 30.4,
                   'observe_end': start + 45},
        'metrics': dict(values, samples_total=412, samples_failed=13 if violated else 0, recovered=True,
                        latency_ms={'baseline': {'p50': 3.1, 'p95': 5.2, 'p99': 8.0},
                                    'fault': {'p50': 30.0, 'p95': 46.2, 'p99': 80.1}}),
        'slo': {'targets': dict(TARGETS), 'checks': checks, 'verdict': 'fail' if violated else 'pass',
                'score': 40.0 if violated else 95.0},
        'timeline': [{'t': float(t), 'latency_ms': 3.0 + (40.0 if 0 <= t <= 30 else 0.0),
                      'ok': not (violated and 4 <= t <= 8)} for t in range(-5, 45, 2)],
    }


def skipped_record(name='Database Downtime', reason='chaos_db has not landed yet'):
    return {'name': name, 'type': 'database', 'status': 'skipped', 'reason': reason, 'environment': 'staging',
            'targets': ['db1'], 'fault': {}, 'window': {}, 'metrics': {}, 'slo': {'targets': dict(TARGETS), 'checks': []},
            'timeline': []}


def table_rows(markdown, header_start):
    """Rows of the Markdown table whose header line starts with header_start."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append(line)
    return lines[start], rows


def cell_count(row):
    """Table cells as GitHub counts them: pipes not escaped with a backslash."""
    return len(re.findall(r'(?<!\\)\|', row)) - 1


@pytest.mark.parametrize('records, run, verdict, banner', [
    ([make_record()], {}, 'PASS', False),
    ([make_record(), make_record('Heavy CPU Stress', violated=['error_rate_percent'], offset=100)], {}, 'FAIL', False),
    ([make_record(), skipped_record()], {}, 'PASS', False),
    ([skipped_record()], {}, 'NO EXPERIMENTS', False),
    ([make_record(status='failed', reason='module crashed')], {}, 'FAIL', False),
    ([make_record(status='aborted', reason='error rate above abort threshold 50 %')], {}, 'FAIL', False),
    ([make_record(status='dry_run')], {}, 'DRY RUN', True),
    ([make_record()], {'check_mode': True}, 'DRY RUN', True),
    ([], {}, 'NO EXPERIMENTS', False),
])
def test_verdict_and_dry_run_banner(records, run, verdict, banner):
    report = report_lib.build_report(records, run)
    markdown = report_lib.render_markdown(report)
    assert report['verdict'] == verdict
    assert '**Verdict: %s**' % verdict in markdown
    assert ('**DRY RUN**' in markdown) is banner


def test_one_row_per_experiment_with_marks():
    records = [make_record('Light CPU Stress'),
               make_record('Heavy CPU Stress', violated=['error_rate_percent', 'availability_percent'], offset=100)]
    markdown = report_lib.render_markdown(report_lib.build_report(records))
    header, rows = table_rows(markdown, '| Experiment | Type | Result | Score')
    assert len(rows) == 2
    assert all(cell_count(row) == cell_count(header) == 4 for row in rows)
    assert rows[0] == '| Light CPU Stress | cpu, light | %s PASS | 95 |' % report_lib.MARK_PASS
    assert rows[1] == '| Heavy CPU Stress | cpu, light | %s FAIL | 40 |' % report_lib.MARK_FAIL
    header, rows = table_rows(markdown, '| Experiment | MTTR |')
    assert header == ('| Experiment | MTTR | Error rate | Availability | Latency degradation | Recovery time |'
                      ' Probe (error rate and availability as seen by it) |')
    assert all(cell_count(row) == 7 for row in rows)
    light, heavy = rows
    assert light.startswith('| Light CPU Stress |') and light.count(report_lib.MARK_PASS) == 5
    assert heavy.startswith('| Heavy CPU Stress |')
    assert '22.5 % ' + report_lib.MARK_FAIL in heavy
    assert '71 % ' + report_lib.MARK_FAIL in heavy
    assert '1.3 s ' + report_lib.MARK_PASS in heavy


def test_skipped_experiment_listed_with_reason_not_in_results_table():
    markdown = report_lib.render_markdown(report_lib.build_report([make_record(), skipped_record()]))
    _header, rows = table_rows(markdown, '| Experiment | Type | Result')
    assert [r.split('|')[1].strip() for r in rows] == ['Light CPU Stress']
    _header, skipped = table_rows(markdown, '| Experiment | Type | Reason')
    assert skipped == ['| Database Downtime | database | chaos\\_db has not landed yet |']


def test_experiments_ordered_by_start_time():
    records = [make_record('Second', offset=100), skipped_record(), make_record('First')]
    report = report_lib.build_report(records)
    assert [e['name'] for e in report['experiments']] == ['First', 'Second', 'Database Downtime']


HOSTILE = [
    'pipe | in | name',
    'new\nline\n# heading injection',
    'tick ` and ``` fence',
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '[click](http://evil.invalid) ![img](http://evil.invalid/x.png)',
    'ctrl \x00\x07\x1b[31m chars',
    '%%{init: {"theme": "dark"}}%% "quoted"',
]


@pytest.mark.parametrize('hostile', HOSTILE)
def test_hostile_strings_cannot_break_tables_or_inject_html(hostile):
    record = make_record(name=hostile, violated=['mttr_seconds'])
    record['targets'] = ['app1', hostile]
    markdown = report_lib.render_markdown(report_lib.build_report([record, skipped_record(hostile, reason=hostile)]))
    for header_start in ('| Experiment | Type | Result', '| Experiment | MTTR'):
        header, rows = table_rows(markdown, header_start)
        assert len(rows) == 1 and cell_count(rows[0]) == cell_count(header)
    _header, skipped = table_rows(markdown, '| Experiment | Type | Reason')
    assert len(skipped) == 1 and cell_count(skipped[0]) == 3
    assert '<script' not in markdown and '<img' not in markdown
    assert not re.search(r'^# heading', markdown, re.MULTILINE)
    assert '](http' not in markdown.replace('\\](http', '')
    assert '\x00' not in markdown and '\x1b' not in markdown
    # code fences stay balanced: the only fences are the mermaid block's
    fences = [line for line in markdown.splitlines() if line.startswith('```')]
    assert fences == ['```mermaid', '```']
    mermaid = markdown.split('```mermaid\n', 1)[1].split('\n```', 1)[0]
    title = next(line for line in mermaid.splitlines() if line.startswith('    title'))
    assert title.startswith('    title "') and title.count('"') == 2
    assert '%%' not in mermaid and '`' not in mermaid and '<' not in mermaid


def chart_series(chart):
    """{series name: [values]} and the x-axis range of a rendered chart."""
    series = {}
    for kind, name, values in re.findall(r'^    (bar|line) "([^"]*)" \[([^\]]*)\]$', chart, re.MULTILINE):
        series[name] = [float(v) for v in values.split(',')]
    x_axis = re.search(r'^    x-axis "[^"]*" (-?[0-9.]+) --> (-?[0-9.]+)$', chart, re.MULTILINE)
    return series, (float(x_axis.group(1)), float(x_axis.group(2)))


def test_bars_without_a_value_stay_below_the_axis():
    series, _x = chart_series(report_lib.timeline_chart(make_record()))
    y_max = max(series['fault active'])
    assert set(series['failed samples (share)']) == {-y_max}  # nothing failed: no stub on the x-axis
    assert min(series['fault active']) == -y_max


def test_mermaid_chart_has_numeric_axis_named_series_and_palette():
    record = make_record(violated=['error_rate_percent'])
    record['timeline'] = [{'t': t / 2.0 - 5, 'latency_ms': 3.0, 'ok': True} for t in range(100)]
    chart = report_lib.timeline_chart(record)
    assert chart.splitlines()[0] == '---' and '\nxychart-beta\n' in chart
    assert 'plotColorPalette: "#c8c8c8, #d62728, #1f77b4"' in chart
    series, x_range = chart_series(chart)
    assert list(series) == ['fault active', 'failed samples (share)', 'latency of successful samples (ms)']
    assert all(len(values) == report_lib.CHART_BUCKETS for values in series.values())
    assert x_range == (-5.0, 44.5)
    assert '"-5"' not in chart  # no text labels on the x-axis


def test_failed_samples_are_their_own_series_not_zero_latency():
    record = make_record()
    record['timeline'] = ([{'t': float(t), 'latency_ms': 10.0, 'ok': True} for t in range(0, 5)]
                          + [{'t': float(t), 'latency_ms': None, 'ok': False} for t in range(5, 10)]
                          + [{'t': float(t), 'latency_ms': 12.0, 'ok': True} for t in range(10, 15)])
    series, _x = chart_series(report_lib.timeline_chart(record))
    latency, failed = series['latency of successful samples (ms)'], series['failed samples (share)']
    assert min(latency) == 10.0  # held through the outage, never drawn as 0 ms
    y_max = max(series['fault active'])
    assert [i for i, v in enumerate(failed) if v == y_max] == [5, 6, 7, 8, 9]
    assert all(v < 0 for i, v in enumerate(failed) if i not in range(5, 10))  # below the axis: no bar drawn


@pytest.mark.parametrize('fault_end, expected_band, instant', [
    (4.0, [0, 1, 2, 3, 4], False),     # a 4 s fault: t = 0..4
    (0.0, [0], True),                  # a crash: one band at t = 0
    (0.3, [0], True),                  # shorter than one bucket: still an instant fault
    (None, list(range(0, 11)), False),  # end not measured: from 0 to the end
])
def test_fault_window_band(fault_end, expected_band, instant):
    points = [{'t': float(t), 'latency_ms': 5.0, 'ok': True} for t in range(-3, 11)]
    sampled = report_lib.resample_timeline(points, fault_end)
    band = [int(t) for t, inside in zip(sampled['times'], sampled['fault']) if inside]
    assert band == expected_band
    assert sampled['instant'] is instant


def test_instant_fault_is_named_in_the_chart_title():
    record = make_record()
    record['fault']['ended_at'] = record['fault']['started_at']
    record['window']['fault_end'] = record['window']['fault_start']
    chart = report_lib.timeline_chart(record)
    assert 'instant fault at 0 s' in chart
    markdown = report_lib.render_markdown(report_lib.build_report([record]))
    assert 'an instant fault, marked at t = 0' in markdown


@pytest.mark.parametrize('points, times', [
    ([], None),
    ([{'t': 'x'}, 'junk'], None),
    ([{'t': 2.0, 'latency_ms': 1.0, 'ok': True}], [2.0]),
    ([{'t': float(t), 'latency_ms': 1.0, 'ok': True} for t in (4, 0, 2)], [0.0, 2.0, 4.0]),
])
def test_resample_timeline_edges(points, times):
    sampled = report_lib.resample_timeline(points, 1.0)
    assert (sampled['times'] if sampled else None) == times


@pytest.mark.parametrize('value, in_table, expected', [
    ('ansible-playbook playbooks/chaos.yml -i inventories/local', False,
     '`ansible-playbook playbooks/chaos.yml -i inventories/local`'),
    ('http://127.0.0.1:8080/api/health', False, '`http://127.0.0.1:8080/api/health`'),
    ('a | b', True, '`a \\| b`'),
    ('a | b', False, '`a | b`'),
    ('has `tick` inside', False, '``has `tick` inside``'),
    ('`edge', False, '`` `edge ``'),
    ('line\nbreak', False, '`line break`'),
    ('', False, ''),
    (None, False, ''),
])
def test_code_span(value, in_table, expected):
    assert report_lib.md_code(value, in_table) == expected


@pytest.mark.parametrize('value, in_table, expected', [
    ('start it with `make demo DEMO_MODE=container` first', True,
     'start it with `make demo DEMO_MODE=container` first'),
    ('a `x | y` and *b*', True, 'a `x \\| y` and \\*b\\*'),
    ('a `x | y`', False, 'a `x | y`'),
    ('one ` only', True, 'one \\` only'),
    ('empty `` span', True, 'empty \\`\\` span'),
    ('`<img src=x>`', True, '\\`&lt;img src=x&gt;\\`'),
    ('run `a && b`', True, 'run \\`a &amp;&amp; b\\`'),
    ('<b>bold</b>', True, '&lt;b&gt;bold&lt;/b&gt;'),
    (None, True, ''),
])
def test_text_keeps_marked_commands_as_code(value, in_table, expected):
    assert report_lib.md_text(value, in_table) == expected


def test_skip_reason_with_a_command_renders_it_as_code():
    reason = 'the demo runs as local processes; start it with `make demo DEMO_MODE=container`'
    markdown = report_lib.render_markdown(report_lib.build_report([skipped_record(reason=reason)]))
    _header, skipped = table_rows(markdown, '| Experiment | Type | Reason')
    assert skipped == ['| Database Downtime | database | the demo runs as local processes; start it with '
                       '`make demo DEMO_MODE=container` |']
    assert '\\`' not in markdown


def test_urls_and_commands_are_code_spans():
    run = {'playbooks': ['playbooks/chaos.yml'], 'inventories': ['inventories/staging'], 'check_mode': True}
    markdown = report_lib.render_markdown(report_lib.build_report([make_record()], run))
    assert '| Command | `ansible-playbook playbooks/chaos.yml -i inventories/staging --check` |' in markdown
    assert 'probe `http://127.0.0.1:8080/api/health`' in markdown
    assert 'Fault `magsasa.chaos.chaos_cpu`' in markdown


@pytest.mark.parametrize('metric', METRIC_KEYS)
def test_recommendations_for_each_violated_metric(metric):
    record = make_record(name='Only %s' % metric, violated=[metric], fault_type='database')
    report = report_lib.build_report([record])
    markdown = report_lib.render_markdown(report)
    section = markdown.split('## Violations and recommendations', 1)[1].split('## Experiment details', 1)[0]
    for advice in report_lib.RECOMMENDATIONS[metric]:
        assert advice in section
    for other in METRIC_KEYS:
        if other != metric:
            assert report_lib.RECOMMENDATIONS[other][0] not in section
    assert report_lib.TYPE_HINTS['database'] in section
    label = dict((m[0], m[2]) for m in report_lib.METRICS)[metric]
    assert '**%s** was' % label in section


def test_recommendation_keywords_cover_the_seed_strategies():
    advice = ' '.join(' '.join(items) for items in report_lib.RECOMMENDATIONS.values()).lower()
    for strategy in ('exponential backoff', 'jitter', 'circuit breaker', 'health check', 'readiness probe',
                     'connection-pool', 'autoscale', 'timeouts', 'degrade gracefully', 'fail over'):
        assert strategy in advice


def test_secrets_never_reach_any_output():
    record = make_record(violated=['recovery_seconds'])
    record['fault']['parameters'] = {'workers': 2, 'login_password': 'hunter2', 'api_token': 'tok-123',
                                     'slack_webhook': 'https://hooks.example.invalid/T1', 'nested': {'client_secret': 'cs-9'}}
    record['target_url'] = 'https://probe:pa55w0rd@127.0.0.1:8443/health'
    report = report_lib.build_report([record], {'playbooks': ['p.yml'], 'vault_password_file': '/secret/file'})
    outputs = [report_lib.render_markdown(report), report_lib.render_json(report), report_lib.render_junit(report)]
    for output in outputs:
        for secret in ('hunter2', 'tok-123', 'hooks.example.invalid', 'cs-9', 'pa55w0rd', '/secret/file'):
            assert secret not in output
    parameters = json.loads(outputs[1])['experiments'][0]['fault']['parameters']
    assert parameters == {'workers': 2, 'nested': {}}
    assert json.loads(outputs[1])['experiments'][0]['target_url'] == 'https://***@127.0.0.1:8443/health'


def test_json_holds_full_records_and_run_metadata():
    records = [make_record(), skipped_record()]
    run = {'playbooks': ['playbooks/chaos.yml'], 'inventories': ['inventories/staging'], 'check_mode': False,
           'started_at': '2026-11-29T18:00:00Z', 'ended_at': '2026-11-29T18:02:00Z', 'duration_seconds': 120.0}
    document = json.loads(report_lib.render_json(report_lib.build_report(records, run)))
    assert document['schema'] == report_lib.REPORT_SCHEMA
    assert document['experiments'] == records
    assert document['run']['playbooks'] == ['playbooks/chaos.yml']
    assert document['run']['environments'] == ['staging']
    assert document['summary']['verdict'] == 'PASS'
    assert document['summary']['counts']['skipped'] == 1


@pytest.mark.parametrize('records, counts', [
    ([make_record()], {'tests': 1, 'failures': 0, 'errors': 0, 'skipped': 0}),
    ([make_record(), make_record('B', violated=['mttr_seconds', 'error_rate_percent'], offset=60), skipped_record(),
      make_record('C', status='failed', reason='no such container', offset=120)],
     {'tests': 4, 'failures': 1, 'errors': 1, 'skipped': 1}),
    ([make_record(status='aborted', reason='stop condition'), make_record('D', status='dry_run', offset=60)],
     {'tests': 2, 'failures': 1, 'errors': 0, 'skipped': 1}),
])
def test_junit_structure(records, counts):
    suite = ET.fromstring(report_lib.render_junit(report_lib.build_report(records)).encode('utf-8'))
    assert suite.tag == 'testsuite'
    for key, expected in counts.items():
        assert int(suite.get(key)) == expected
    cases = suite.findall('testcase')
    assert len(cases) == counts['tests']
    assert len(suite.findall('testcase/failure')) == counts['failures']
    assert len(suite.findall('testcase/error')) == counts['errors']
    assert len(suite.findall('testcase/skipped')) == counts['skipped']


def test_junit_failure_lists_violated_checks_and_survives_hostile_names():
    record = make_record(name='bad \x00\x1b name <x> & "q"', violated=['mttr_seconds', 'latency_degradation_ms'])
    suite = ET.fromstring(report_lib.render_junit(report_lib.build_report([record])).encode('utf-8'))
    case = suite.find('testcase')
    assert case.get('name') == 'bad  name <x> & "q"'
    assert case.get('classname') == 'chaos.staging.cpu'
    failure = case.find('failure')
    assert failure.get('type') == 'slo_violation'
    assert 'mttr_seconds 75 s' in failure.get('message')
    assert 'latency_degradation_ms 1900 ms' in failure.get('message')
    assert 'error_rate_percent' not in failure.get('message')


def test_user_template_replaces_default_and_is_escaped():
    record = make_record(name='evil | <b>bold</b>')
    template = ('# Our report {{ report.verdict }}\n'
                '{% for e in report.experiments %}* {{ e.name }} {{ e.outcome }}\n{% endfor %}'
                '{{ "**trusted**" | safe }}\n')
    markdown = report_lib.render_markdown(report_lib.build_report([record]), template)
    assert markdown == '# Our report PASS\n* evil \\| &lt;b&gt;bold&lt;/b&gt; PASS\n**trusted**\n'


def test_broken_user_template_raises_for_the_caller_to_report():
    with pytest.raises(Exception):
        report_lib.render_markdown(report_lib.build_report([make_record()]), '{{ report.no_such_key }}')


def test_one_line_summary_names_violations():
    records = [make_record(), make_record('Heavy\nCPU', violated=['error_rate_percent'], offset=60)]
    line = report_lib.one_line_summary(report_lib.build_report(records), 'reports/chaos_report.md')
    assert '\n' not in line
    assert line.startswith('chaos_report: FAIL - 2 experiments, 1 passed, 1 violated SLOs')
    assert 'Heavy CPU (error_rate_percent 22.5 %' in line
    assert line.endswith('| report: reports/chaos_report.md')


@pytest.mark.parametrize('value, unit, expected', [
    (1.3, 's', '1.3 s'),
    (96.8, '%', '96.8 %'),
    (41.0, 'ms', '41 ms'),
    (1234.6, 'ms', '1235 ms'),
    (0, '%', '0 %'),
    (None, 's', 'n/a'),
    (float('nan'), 's', 'n/a'),
    (True, '', 'n/a'),
])
def test_fmt_number(value, unit, expected):
    assert report_lib.fmt_number(value, unit) == expected


def test_build_report_does_not_modify_its_input():
    records = [make_record()]
    records[0]['fault']['parameters']['password'] = 'x'
    before = copy.deepcopy(records)
    report_lib.build_report(records)
    assert records == before


@pytest.mark.parametrize('load, expected', [
    ({'interval_seconds': 0.1, 'rate_hz': 10.0, 'concurrency': 22, 'max_in_flight': 2},
     'the probe\'s own load on the target: 10 requests/s, at most 22 in flight (2 seen)'),
    ({'interval_seconds': 0.02, 'rate_hz': 50.0, 'concurrency': 4, 'max_in_flight': None},
     'the probe\'s own load on the target: 50 requests/s, at most 4 in flight\n'),
    (None, 'the probe\'s own load on the target: not recorded'),
])
def test_probe_load_is_stated_next_to_availability(load, expected):
    record = make_record()
    record['metrics']['availability_percent'] = 96.84
    if load is not None:
        record['metrics']['probe_load'] = load
    markdown = report_lib.render_markdown(report_lib.build_report([record]))
    assert expected in markdown, markdown
    assert '- Availability 96.84 % and error rate as seen by the probe' in markdown, markdown


def test_expected_violations_are_shown_marked_and_do_not_fail_the_verdict():
    downtime = make_record('Light Database Downtime', fault_type='database',
                           violated=['error_rate_percent', 'availability_percent'])
    for check in downtime['slo']['checks']:
        if not check['passed']:
            check['expected'] = True
    downtime['slo']['verdict'] = 'pass'
    report = report_lib.build_report([downtime, make_record('Light CPU Stress', offset=100)])
    assert report['verdict'] == 'PASS'
    assert report['counts']['passed'] == 2 and report['counts']['violated'] == 0
    assert [e['name'] for e in report['expected']] == ['Light Database Downtime']
    markdown = report_lib.render_markdown(report)
    dummy, rows = table_rows(markdown, '| Experiment | MTTR')
    assert '22.5 % ' + report_lib.MARK_EXPECTED in rows[0] and report_lib.MARK_FAIL not in rows[0]
    assert '## Expected violations' in markdown
    assert '- Light Database Downtime: **Error rate** was 22.5 %, target ≤ 5 % (expected)' in markdown
    assert '## Violations and recommendations' not in markdown
    assert 'failures="0"' in report_lib.render_junit(report)


def test_an_undeclared_violation_next_to_expected_ones_still_fails():
    downtime = make_record('Light Database Downtime', fault_type='database',
                           violated=['error_rate_percent', 'recovery_seconds'])
    for check in downtime['slo']['checks']:
        if check['metric'] == 'error_rate_percent':
            check['expected'] = True
    report = report_lib.build_report([downtime])
    assert report['verdict'] == 'FAIL'
    assert [v['metric'] for v in report['experiments'][0]['violations']] == ['recovery_seconds']
    assert [v['metric'] for v in report['experiments'][0]['expected_violations']] == ['error_rate_percent']


def _fleet_record(status='completed', **extra):
    record = {
        'name': 'Fleet', 'type': 'memory', 'status': status, 'targets': ['web1', 'web2'],
        'probe': {'interval': 0.1, 'timeout': 1.0},
        'window': {'fault_start': 1000.0, 'fault_end': 1010.0},
        'fault': {'planned_duration': 10, 'injection_spread': 0.4},
        'metrics': {'availability_percent': 99.0, 'error_rate_percent': 1.0},
        'slo': {'verdict': 'pass', 'checks': [{'metric': 'availability_percent', 'op': '>=', 'target': 95,
                                               'value': 99.0, 'passed': True}]},
        'hosts': [
            {'host': 'web1', 'status': 'ok', 'ended': 'deadline', 'injected_at': 1000.0, 'reverted_at': 1010.0,
             'held_seconds': 10.0, 'clock_offset': 0.01},
            {'host': 'web2', 'status': 'failed', 'ended': 'lease-lapsed', 'injected_at': 1000.4,
             'reverted_at': 1005.3, 'held_seconds': 4.9, 'clock_offset': -0.02, 'reason': 'the lease lapsed',
             'start_slack': -0.4},
        ],
    }
    record.update(extra)
    return record


def test_the_report_shows_each_hosts_window_the_spread_and_a_lapsed_lease():
    text = report_lib.render_markdown(report_lib.build_report([_fleet_record()]))
    assert 'Injection spread 0.4 s across 2 host(s)' in text
    assert '| web1 | 0 s to 10 s | 10 s of 10 s | %s deadline |' % report_lib.MARK_PASS in text
    assert '| web2 | 0.4 s to 5.3 s | 4.9 s of 10 s | %s lease-lapsed |' % report_lib.MARK_FAIL in text
    # a host the controller reached after the common start says so (it explains its part of the spread)
    assert 'the lease lapsed; ready 0.4 s after the common start' in text
    assert 'every 0.1 s, timeout 1 s' in text


@pytest.mark.parametrize('status', ['failed', 'aborted'])
def test_an_errored_or_aborted_experiment_shows_its_metrics_without_pass_marks(status):
    view = report_lib.experiment_view(_fleet_record(status=status))
    availability = [m for m in view['metrics'] if m['metric'] == 'availability_percent'][0]
    assert availability['value'] == '99 %' and availability['mark'] == report_lib.MARK_NONE and availability['passed'] is None
    assert report_lib.MARK_PASS not in ''.join(m['mark'] for m in view['metrics'])


def test_experiment_details_name_the_backend_each_host_used():
    delay = make_record('Light Network Delay', fault_type='netem')
    delay['fault']['parameters'] = {'delay_ms': 50, 'backend': 'auto'}
    delay['fault']['results'] = [{'host': 'app1', 'details': {'backend': 'nfqueue'}},
                                 {'host': 'app2', 'details': {'backend': 'tc'}},
                                 {'host': 'app3', 'details': {}}]
    markdown = report_lib.render_markdown(report_lib.build_report([delay, make_record(offset=100)]))
    assert 'delay_ms=50`), backend nfqueue, tc, fault window' in markdown
    assert '(`workers=2`), fault window' in markdown
