# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.magsasa.chaos.plugins.filter import notify as notify_filters
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _notify as notify_lib
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _report as report_lib
from ansible_collections.magsasa.chaos.tests.unit.plugins.plugin_utils.test_report import make_record, skipped_record

SLACK = 'https://hooks.slack.com/services/T000/B000/s3cr3tT0k3n'
HOOK = 'https://chat.example.com/hooks/abc123secret'

PLAN = {
    'scenarios': [
        {'name': 'Light CPU Stress', 'type': 'cpu', 'intensity': 'light', 'targets': 'app', 'duration': 15},
        {'name': 'Process Crash', 'type': 'process', 'intensity': 'medium', 'targets': 'web1', 'duration': 20},
        {'name': 'Odd', 'type': 'cpu', 'targets': 'app:&eu', 'duration': 5},
    ],
    'groups': {'all': ['web1', 'web2'], 'app': ['web1', 'web2']},
    'environment': 'staging', 'inventories': ['inventories/staging'], 'playbook': 'Chaos experiments',
    'check_mode': False, 'pause_between': 5, 'per_experiment_overhead': 10,
    'started_by': {'user': 'ana', 'controller': 'ctl1'},
}


@pytest.mark.parametrize('slack, hook, fmt, expected', [
    ('', '', 'generic', []),
    (SLACK, '', 'generic', [('slack', 'slack')]),
    ('', HOOK, 'mattermost', [('json', 'mattermost')]),
    (SLACK, HOOK, 'teams', [('slack', 'slack'), ('json', 'teams')]),
    ('  ', None, 'generic', []),
])
def test_destinations(slack, hook, fmt, expected):
    assert [(d['name'], d['flavour']) for d in notify_lib.destinations(slack, hook, fmt)] == expected


@pytest.mark.parametrize('slack, hook, fmt, message', [
    ('ftp://hooks.example/secret-path', '', 'generic', 'chaos_notify_slack_webhook must be an http(s) URL'),
    ('', 'https://user:pw@hooks.example/secret-path', 'generic', 'chaos_notify_webhook_url must be an http(s) URL'),
    ('', 'hooks.example/secret-path', 'generic', 'chaos_notify_webhook_url must be an http(s) URL'),
    ('', HOOK, 'pager', "chaos_notify_webhook_format must be one of mattermost, teams, generic, got 'pager'"),
])
def test_bad_destinations_name_the_variable_not_the_secret(slack, hook, fmt, message):
    with pytest.raises(ValueError) as caught:
        notify_lib.destinations(slack, hook, fmt)
    assert message in str(caught.value)
    assert 'secret-path' not in str(caught.value) and 'pw@' not in str(caught.value)
    with pytest.raises(AnsibleFilterError, match='magsasa.chaos.notify_destinations: '):
        notify_filters.notify_destinations(slack, hook, fmt)


@pytest.mark.parametrize('url, shown', [
    (SLACK, 'https://hooks.slack.com/...'),
    ('http://127.0.0.1:8080/hooks/x', 'http://127.0.0.1:8080/...'),
    ('https://u:p@host.example/x', 'https://host.example/...'),
    ('nonsense', 'an invalid URL'),
    (None, 'an invalid URL'),
])
def test_describe_url_keeps_the_host_only(url, shown):
    assert notify_lib.describe_url(url) == shown


def test_scrub_removes_every_url():
    text = 'Request failed for %s (also %s): <urlopen error refused>' % (SLACK, HOOK)
    scrubbed = notify_lib.scrub(text, [SLACK, HOOK, ''])
    assert 's3cr3t' not in scrubbed and 'abc123secret' not in scrubbed
    assert 'https://hooks.slack.com/...' in scrubbed and 'https://chat.example.com/...' in scrubbed


@pytest.mark.parametrize('context, text', [
    ({'user': 'ana', 'controller': 'ctl1'}, 'ana on ctl1'),
    ({'awx_job_id': 42, 'awx_user': 'bob', 'user': 'awx'}, 'AWX job 42 launched by bob; awx'),
    ({'ci_run_url': 'https://github.com/o/r/actions/runs/9', 'ci_actor': 'eve'}, 'CI run https://github.com/o/r/actions/runs/9 by eve'),
    ({}, 'unknown'),
    (None, 'unknown'),
])
def test_started_by(context, text):
    assert notify_lib.started_by(context) == text


def test_start_event_says_what_where_how_long_and_who():
    event = notify_lib.start_event(PLAN)
    assert event['title'] == 'Chaos run starting in staging'
    assert event['lines'][0] == 'Starting 3 experiments in staging (inventory inventories/staging), about 80 s in all:'
    assert event['lines'][1] == '- Light CPU Stress (cpu, light, 15 s) on web1, web2'
    assert event['lines'][2] == '- Process Crash (process, medium, 20 s) on web1'
    assert event['lines'][3] == '- Odd (cpu, 5 s) on app:&eu'  # a pattern Ansible resolves: named as given
    assert event['lines'][-1] == 'Started by ana on ctl1.'
    assert event['fields']['estimated_seconds'] == 15 + 20 + 5 + 3 * 10 + 2 * 5


def test_a_dry_run_is_announced_as_a_plan():
    event = notify_lib.start_event(dict(PLAN, check_mode=True))
    assert event['title'] == 'Chaos run planned (dry run) in staging'
    assert event['lines'][0].startswith('Planning (dry run) 3 experiments')


def test_violation_and_finish_events():
    records = [make_record('Light CPU Stress'), make_record('Heavy', violated=['error_rate_percent'], offset=60),
               skipped_record()]
    report = report_lib.build_report(records)
    violated = report['violated'][0]
    event = notify_lib.violation_event(violated)
    assert event['title'] == 'Chaos experiment FAIL: Heavy'
    assert event['fields']['violations'] == ['error_rate_percent 22.5 % (target <= 5 %)']
    finish = notify_lib.finish_event(report, '/srv/reports/chaos_report.md')
    assert finish['title'] == 'Chaos run finished in staging: FAIL' and finish['severity'] == 'danger'
    assert finish['lines'][0] == 'Verdict FAIL: 3 experiments, 1 passed, 1 violated SLOs, 0 aborted, 0 failed, 1 skipped.'
    assert finish['lines'][-1] == 'Report: /srv/reports/chaos_report.md'
    assert finish['fields']['violated'] == [{'experiment': 'Heavy', 'outcome': 'FAIL'}]


def test_aborted_experiment_says_the_fault_was_reverted():
    record = make_record(status='aborted', reason='error rate above abort threshold 50 %')
    event = notify_lib.violation_event(report_lib.build_report([record])['experiments'][0])
    assert event['fields']['outcome'] == 'ABORTED'
    assert 'error rate above abort threshold 50 %' in event['lines'][0]
    assert 'it was reverted' in event['lines'][1]


@pytest.mark.parametrize('flavour, keys', [
    ('slack', {'text', 'blocks'}),
    ('mattermost', {'username', 'text'}),
    ('teams', {'@type', '@context', 'summary', 'themeColor', 'title', 'text'}),
    ('generic', {'source', 'event', 'severity', 'title', 'text', 'environment', 'experiments', 'estimated_seconds',
                 'started_by', 'inventories', 'playbook', 'check_mode'}),
])
def test_payload_shapes(flavour, keys):
    body = notify_lib.payload(notify_lib.start_event(PLAN), flavour)
    assert set(body) == keys
    json.dumps(body)  # a webhook body is JSON


def test_slack_text_is_escaped():
    plan = dict(PLAN, scenarios=[{'name': '<!channel> & <http://evil|click>', 'type': 'cpu', 'targets': 'app', 'duration': 1}])
    body = notify_lib.payload(notify_lib.start_event(plan), 'slack')
    assert '<!channel>' not in json.dumps(body) and '&lt;!channel&gt; &amp;' in body['blocks'][1]['text']['text']


@pytest.mark.parametrize('event, flavour, message', [
    ({'event': 'start'}, 'irc', 'flavour must be one of'),
    ({'event': 'reboot'}, 'slack', 'event must be one of'),
])
def test_payload_refuses_unknown_input(event, flavour, message):
    with pytest.raises(ValueError, match=message):
        notify_lib.payload(event, flavour)


def test_start_payload_filter():
    assert notify_filters.notify_start_payload(PLAN, 'generic')['event'] == 'start'
    with pytest.raises(AnsibleFilterError, match='the plan must be a dict, got list'):
        notify_filters.notify_start_payload([], 'generic')


def test_undelivered_filter_scrubs_urls():
    results = {'results': [
        {'status': 200, 'chaos_notify_destination': {'name': 'slack', 'url': SLACK}},
        {'status': -1, 'msg': 'Request failed: <urlopen error refused> for %s' % HOOK,
         'chaos_notify_destination': {'name': 'json', 'url': HOOK}},
        {'status': 500, 'msg': 'Status code was 500', 'chaos_notify_destination': {'name': 'json', 'url': HOOK}},
    ]}
    undelivered = notify_filters.notify_undelivered(results)
    assert [u['status'] for u in undelivered] == [-1, 500]
    assert undelivered[0]['text'] == ('json webhook at https://chat.example.com/...: Request failed: '
                                      '<urlopen error refused> for https://chat.example.com/...')
    assert undelivered[1]['text'].startswith('json webhook at https://chat.example.com/...: HTTP 500, ')
    assert 'abc123secret' not in json.dumps(undelivered)
    assert notify_filters.notify_undelivered({}) == []
