# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json
import re

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils import _history as history_lib
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _report as report_lib

from ansible_collections.magsasa.chaos.tests.unit.plugins.plugin_utils.test_report import make_record, skipped_record


def entry(identifier, started_at, **scenarios):
    """A history entry with scenarios given as name=(outcome, score, mttr)."""
    return {
        'schema': history_lib.HISTORY_SCHEMA, 'id': identifier, 'started_at': started_at, 'verdict': 'PASS',
        'scenarios': [{'name': name, 'environment': 'staging', 'outcome': outcome, 'score': score,
                       'mttr_seconds': mttr, 'outage': mttr is not None}
                      for name, (outcome, score, mttr) in sorted(scenarios.items())],
    }


def test_entry_keeps_measured_scenarios_only():
    report = report_lib.build_report([make_record('Light CPU Stress'), skipped_record(),
                                      make_record('Heavy', violated=['mttr_seconds'], offset=60)],
                                     {'started_at': '2026-11-30T07:57:43Z', 'playbooks': ['playbooks/chaos.yml']})
    kept = history_lib.history_entry(report, '20261130T075743Z-abcdef')
    assert [s['name'] for s in kept['scenarios']] == ['Light CPU Stress', 'Heavy']
    light, heavy = kept['scenarios']
    assert (light['outcome'], light['score'], light['mttr_seconds'], light['outage']) == ('PASS', 95.0, 1.3, False)
    assert (heavy['outcome'], heavy['score'], heavy['mttr_seconds']) == ('FAIL', 40.0, 75.0)
    assert kept['verdict'] == 'FAIL' and kept['started_at'] == '2026-11-30T07:57:43Z'
    assert history_lib.parse_history(json.dumps(kept)) == kept


@pytest.mark.parametrize('records, run', [
    ([make_record()], {'check_mode': True}),
    ([skipped_record()], {}),
    ([], {}),
])
def test_runs_that_measured_nothing_leave_no_entry(records, run):
    assert history_lib.history_entry(report_lib.build_report(records, run), '20261130T075743Z-abcdef') is None


@pytest.mark.parametrize('text, message', [
    ('{not json', 'not JSON'),
    ('[]', 'schema is not magsasa.chaos/history/v1'),
    (json.dumps({'schema': 'other/v1'}), 'schema is not'),
    (json.dumps({'schema': history_lib.HISTORY_SCHEMA, 'scenarios': []}), 'started_at (a string)'),
    (json.dumps({'schema': history_lib.HISTORY_SCHEMA, 'started_at': 'x', 'scenarios': [{'score': 1}]}),
     'a scenario without a name'),
    (json.dumps({'schema': history_lib.HISTORY_SCHEMA, 'started_at': 'x', 'scenarios': [{'name': 'a', 'score': 'high'}]}),
     "scenario 'a': score must be a number, got 'high'"),
])
def test_malformed_history_is_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        history_lib.parse_history(text)


@pytest.mark.parametrize('names, keep, pruned', [
    (['20261130T070000Z-aaaaaa.json', '20261130T080000Z-bbbbbb.json', '20261130T090000Z-cccccc.json'], 2,
     ['20261130T070000Z-aaaaaa.json']),
    (['20261130T090000Z-cccccc.json', '20261130T070000Z-aaaaaa.json'], 5, []),
    (['20261130T070000Z-aaaaaa.json', 'notes.txt', 'chaos_report.md', 'mine.json'], 0, ['20261130T070000Z-aaaaaa.json']),
])
def test_retention_prunes_the_oldest_of_our_files_only(names, keep, pruned):
    assert history_lib.files_to_prune(names, keep) == pruned


@pytest.mark.parametrize('identifier', ['../../etc/passwd', '20261130T070000Z', 'x.json', ''])
def test_file_name_refuses_anything_but_a_run_id(identifier):
    with pytest.raises(ValueError):
        history_lib.history_file_name(identifier)


@pytest.mark.parametrize('previous, current, worse', [
    (('PASS', 95, 2.0), ('PASS', 93, 2.2), None),                                        # within tolerance
    (('PASS', 95, 2.0), ('PASS', 80, 2.0), 'score 95 \u2192 80 (down 15, tolerance 5 points)'),
    (('PASS', 95, 2.0), ('FAIL', 95, 2.0), 'verdict PASS \u2192 FAIL'),
    (('PASS', 95, 2.0), ('PASS', 95, 3.0), 'MTTR 2 s \u2192 3 s (tolerance 20 %)'),
    (('PASS', 95, 0.1), ('PASS', 95, 0.3), None),                                        # below the 0.5 s floor
    (('PASS', 95, None), ('PASS', 95, 4.0), 'MTTR 0 s \u2192 4 s (tolerance 20 %)'),          # no outage before
    (('FAIL', 40, 9.0), ('FAIL', 60, 5.0), None),                                        # got better
    (('FAIL', None, None), ('FAIL', None, None), None),
])
def test_regression_against_the_previous_run(previous, current, worse):
    before = entry('20261130T070000Z-aaaaaa', '2026-11-30T07:00:00Z', A=previous)['scenarios'][0]
    now = entry('20261130T080000Z-bbbbbb', '2026-11-30T08:00:00Z', A=current)['scenarios'][0]
    if previous[2] is None and previous[1] is not None:
        before['outage'] = False
    assert history_lib.regression(before, now) == worse


def test_trend_lists_the_last_runs_of_each_scenario_and_calls_out_the_worse_one():
    older = [entry('20261130T0%d0000Z-aaaaa%d' % (h, h), '2026-11-30T0%d:00:00Z' % h,
                   A=('PASS', 90 + h, 1.0), B=('PASS', 95, 1.0)) for h in range(1, 6)]
    current = entry('20261130T090000Z-ffffff', '2026-11-30T09:00:00Z', A=('PASS', 96, 1.0), B=('FAIL', 50, 12.0))
    trend = history_lib.build_trend(list(reversed(older)), current, runs=3)
    by_name = {t['name']: t for t in trend}
    assert [r['when'] for r in by_name['A']['rows']] == ['11-30 04:00:00', '11-30 05:00:00', '11-30 09:00:00']
    assert [r['current'] for r in by_name['A']['rows']] == [False, False, True]
    assert by_name['A']['worse'] is None
    assert by_name['B']['worse'].startswith('verdict PASS \u2192 FAIL; score 95 \u2192 50')
    assert u'MTTR 1 s \u2192 12 s' in by_name['B']['worse']
    chart = by_name['B']['chart']
    assert 'line "resilience score" [95, 95, 50]' in chart and 'line "MTTR (s)" [1, 1, 12]' in chart


def test_first_run_has_a_trend_row_but_no_chart():
    current = entry('20261130T090000Z-ffffff', '2026-11-30T09:00:00Z', A=('PASS', 96, None))
    (only,) = history_lib.build_trend([], current)
    assert len(only['rows']) == 1 and only['chart'] is None and only['worse'] is None


def test_trend_renders_in_the_report_with_the_warning():
    report = report_lib.build_report([make_record('A', violated=['mttr_seconds'])], {'started_at': '2026-11-30T09:00:00Z'})
    current = history_lib.history_entry(report, '20261130T090000Z-ffffff')
    earlier = entry('20261130T080000Z-eeeeee', '2026-11-30T08:00:00Z', A=('PASS', 95, 1.3))
    report['trend'] = history_lib.build_trend([earlier], current)
    report['trend_tolerance'] = dict(history_lib.DEFAULT_TOLERANCE)
    markdown = report_lib.render_markdown(report)
    assert '## Trend' in markdown
    assert '> **A** got worse than its previous run: verdict PASS \u2192 FAIL; score 95 \u2192 40' in markdown
    assert '| 11-30 08:00:00 | %s PASS | 95 | 1.3 s |' % report_lib.MARK_PASS in markdown
    assert '| 11-30 09:00:00 (this run) | %s FAIL | 40 | 75 s |' % report_lib.MARK_FAIL in markdown
    assert markdown.count('```mermaid') == 2  # the experiment's timeline and the trend
