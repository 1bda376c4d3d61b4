# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import base64

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils import _prometheus
from ansible_collections.magsasa.chaos.plugins.plugin_utils._prometheus import (
    PrometheusExportError, auth_handler, experiment_duration, experiment_labels, metric_families,
    parse_grouping_key,
)


def record(name='CPU', status='completed', verdict='pass', **metrics):
    base = {'mttr_seconds': None, 'error_rate_percent': 0.0, 'availability_percent': 100.0,
            'latency_degradation_ms': 12.5, 'recovery_seconds': 0.4, 'samples_failed': 0, 'samples_total': 10}
    base.update(metrics)
    return {'name': name, 'type': 'cpu', 'intensity': 'light', 'environment': 'staging', 'targets': ['app1'],
            'status': status, 'metrics': base, 'slo': {'verdict': verdict, 'score': 97.5, 'checks': []},
            'window': {'baseline_start': 100.0, 'fault_start': 105.0, 'fault_end': 110.0, 'observe_end': 118.5}}


def by_name(families):
    return dict((f['name'], f) for f in families)


def test_metric_families_of_a_run():
    families, warnings = metric_families([record(), record('Crash', verdict='fail', mttr_seconds=1.3),
                                          {'name': 'DB', 'status': 'skipped', 'environment': 'staging'}],
                                         started=100.0, ended=200.0)
    assert warnings == []
    found = by_name(families)
    crash = ('Crash', 'cpu', 'light', 'staging')
    cpu = ('CPU', 'cpu', 'light', 'staging')
    assert found['chaos_mttr_seconds']['samples'] == [(crash, 1.3)]  # no outage: no MTTR sample
    assert found['chaos_slo_pass']['samples'] == [(cpu, 1.0), (crash, 0.0)]
    assert found['chaos_resilience_score']['samples'] == [(cpu, 97.5), (crash, 97.5)]
    assert found['chaos_experiment_duration_seconds']['samples'] == [(cpu, 18.5), (crash, 18.5)]
    assert found['chaos_experiments']['type'] == 'counter'
    assert found['chaos_experiments']['samples'] == [(('fail', 'staging'), 1), (('pass', 'staging'), 1),
                                                     (('skipped', 'staging'), 1)]
    assert found['chaos_run_start_timestamp_seconds']['samples'] == [((), 100.0)]
    assert found['chaos_run_end_timestamp_seconds']['samples'] == [((), 200.0)]
    assert found['chaos_error_rate_percent']['labels'] == ('scenario', 'type', 'intensity', 'environment')


@pytest.mark.parametrize('status, verdict, expected', [
    ('completed', 'pass', 1.0), ('completed', 'fail', 0.0), ('aborted', 'pass', 0.0), ('failed', None, 0.0),
    ('skipped', None, None), ('dry_run', None, None),
])
def test_slo_pass_by_outcome(status, verdict, expected):
    families, _warnings = metric_families([record(status=status, verdict=verdict)])
    samples = by_name(families)['chaos_slo_pass']['samples']
    assert [v for _labels, v in samples] == ([] if expected is None else [expected])


def test_the_same_scenario_twice_keeps_the_last_and_warns():
    families, warnings = metric_families([record(error_rate_percent=1.0), record(error_rate_percent=2.0)])
    assert by_name(families)['chaos_error_rate_percent']['samples'][0][1] == 2.0
    assert warnings and "'CPU' ran more than once" in warnings[0]


def test_target_hosts_only_when_asked():
    assert 'targets' not in experiment_labels(record())
    assert experiment_labels(dict(record(), targets=['b', 'a']), target_labels=True)['targets'] == 'a,b'


@pytest.mark.parametrize('window, expected', [
    ({'baseline_start': 1.0, 'observe_end': 4.5}, 3.5),
    ({'fault_start': 2.0, 'fault_end': 3.0}, 1.0),
    ({'baseline_start': 5.0, 'observe_end': 4.0}, None),
    ({}, None),
])
def test_experiment_duration(window, expected):
    assert experiment_duration({'window': window}) == expected


@pytest.mark.parametrize('items, expected', [
    ([], {}),
    (['environment=staging', ' team = sre '], {'environment': 'staging', 'team': 'sre'}),
    (['run='], {'run': ''}),
])
def test_parse_grouping_key(items, expected):
    assert parse_grouping_key(items) == expected


@pytest.mark.parametrize('item', ['environment', 'job=x', '1abc=x', 'a-b=c'])
def test_parse_grouping_key_rejects(item):
    with pytest.raises(PrometheusExportError) as caught:
        parse_grouping_key([item])
    assert repr(item.strip()) in str(caught.value)


@pytest.mark.parametrize('kwargs, header', [
    ({'token': 't0k'}, ('Authorization', 'Bearer t0k')),
    ({'username': 'u', 'password': 'p'}, ('Authorization', 'Basic ' + base64.b64encode(b'u:p').decode())),
    ({}, None),
])
def test_auth_handler_adds_the_header(monkeypatch, kwargs, header):
    seen = {}

    def fake_default(url, method, timeout, headers, data):
        seen['headers'] = headers
    monkeypatch.setattr(_prometheus, 'default_handler', fake_default)
    auth_handler(**kwargs)('http://gw', 'PUT', 1, [('Content-Type', 'text/plain')], b'')
    assert seen['headers'][0] == ('Content-Type', 'text/plain')
    assert seen['headers'][1:] == ([header] if header else [])


def test_auth_handler_refuses_token_and_user_together():
    with pytest.raises(PrometheusExportError):
        auth_handler(username='u', password='p', token='t')


def test_export_writes_the_textfile_and_reports_it(tmp_path):
    path = tmp_path / 'node' / 'chaos.prom'
    messages, push_failed = _prometheus.PrometheusExport({'prometheus_textfile': str(path)}).export(
        [record()], 100.0, 200.0)
    assert messages == [('info', 'chaos_report: Prometheus metrics written to %s' % path)] and not push_failed
    text = path.read_text()
    assert 'chaos_resilience_score{environment="staging",intensity="light",scenario="CPU",type="cpu"} 97.5' in text
    assert 'chaos_experiments_created' not in text  # a run's count, not a live counter with a creation time


def test_export_without_prometheus_client_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_prometheus, 'HAS_PROMETHEUS_CLIENT', False)
    messages, push_failed = _prometheus.PrometheusExport({'pushgateway_url': 'http://gw:9091'}).export([record()], 1, 2)
    assert push_failed and messages[0][0] == 'error' and 'pip install prometheus-client' in messages[0][1]


def test_export_is_off_without_outputs():
    assert _prometheus.PrometheusExport({}).export([record()], 1, 2) == ([], False)


def test_a_bad_grouping_key_is_an_error_naming_it_and_nothing_is_pushed():
    messages, push_failed = _prometheus.PrometheusExport(
        {'pushgateway_url': 'http://user:pw@127.0.0.1:9', 'pushgateway_grouping_key': ['team']}).export([record()], 1, 2)
    assert push_failed and "got 'team'" in messages[0][1]
    assert 'pw' not in messages[0][1] and 'http://***@127.0.0.1:9' in messages[0][1]


def test_a_violation_declared_as_expected_still_passes():
    expected = dict(record(), slo={'verdict': 'pass', 'score': 60.0, 'checks': [
        {'metric': 'error_rate_percent', 'value': 30.0, 'target': 5, 'op': '<=', 'passed': False, 'expected': True}]})
    families, _warnings = metric_families([expected])
    assert [v for _labels, v in by_name(families)['chaos_slo_pass']['samples']] == [1.0]


@pytest.mark.parametrize('records, expected', [
    ([record()], 100.0),
    ([record(), dict(record('Later'), window={'baseline_start': 300.0})], 100.0),
    ([{'name': 'No baseline', 'window': {'fault_start': 50.0}}, record()], 50.0),
    ([{'name': 'Skipped', 'status': 'skipped'}], 999.0),
    ([], 999.0),
    (['not a record'], 999.0),
])
def test_run_start_is_the_earliest_window_start(records, expected):
    assert _prometheus.run_start(records, 999.0) == expected
