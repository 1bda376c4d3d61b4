# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run history and the per-scenario trend of the chaos report (pure functions).

The chaos_report callback keeps one small JSON file per run in a history directory. This
module decides what goes into that file, reads one back (refusing what is not ours), picks
the files beyond the retention count, and turns the runs into the report's "Trend" section:
the last N runs of each scenario, a chart, and a call-out when a scenario got worse than its
previous run beyond the tolerance. The callback does the file I/O.
"""

import json
import re
import time

from markupsafe import Markup

from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import (
    CHART_SERIES,
    MARK_FAIL,
    MARK_NONE,
    MARK_PASS,
    _is_number,
    _nice_ceiling,
    fmt_number,
    mermaid_text,
    plain_text,
)

HISTORY_SCHEMA = 'magsasa.chaos/history/v1'
HISTORY_SUFFIX = '.json'
# Outcomes that say something about resilience; skipped and dry-run experiments are not kept.
TRENDED_OUTCOMES = ('PASS', 'FAIL', 'ABORTED', 'ERROR')
_RUN_ID_RE = re.compile(r'^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6,32}$')
DEFAULT_TOLERANCE = {'score_points': 5.0, 'mttr_percent': 20.0, 'mttr_min_seconds': 0.5}


def run_id(epoch, token):
    """Sortable id of a run: its UTC start time and a random hex token (20261130T075743Z-3fa2c1)."""
    return '%s-%s' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(epoch)), token)


def history_file_name(identifier):
    if not _RUN_ID_RE.match(str(identifier)):
        raise ValueError('run id %r is not <YYYYmmddTHHMMSSZ>-<hex>' % (identifier,))
    return identifier + HISTORY_SUFFIX


def _metric(metrics, key):
    return metrics.get(key) if _is_number(metrics.get(key)) else None


def history_entry(report, identifier):
    """What one run leaves in the history: per scenario its outcome, score and metrics.

    Reads the report view model of plugin_utils._report.build_report (already redacted).
    Returns None for a run that measured nothing (dry run, or every experiment skipped).
    """
    if report.get('dry_run'):
        return None
    scenarios = []
    for record, view in zip(report.get('records') or [], report.get('experiments') or []):
        if view.get('outcome') not in TRENDED_OUTCOMES:
            continue
        metrics = record.get('metrics') if isinstance(record.get('metrics'), dict) else {}
        slo = record.get('slo') if isinstance(record.get('slo'), dict) else {}
        scenarios.append({
            'name': plain_text(record.get('name') or 'unnamed experiment'),
            'type': plain_text(record.get('type')),
            'environment': plain_text(record.get('environment')),
            'outcome': view['outcome'],
            'score': slo.get('score') if _is_number(slo.get('score')) else None,
            'mttr_seconds': _metric(metrics, 'mttr_seconds'),
            'outage': bool(metrics.get('samples_failed')) if _is_number(metrics.get('samples_failed')) else None,
            'error_rate_percent': _metric(metrics, 'error_rate_percent'),
            'availability_percent': _metric(metrics, 'availability_percent'),
            'recovery_seconds': _metric(metrics, 'recovery_seconds'),
            'latency_degradation_ms': _metric(metrics, 'latency_degradation_ms'),
        })
    if not scenarios:
        return None
    run = report.get('run') or {}
    return {
        'schema': HISTORY_SCHEMA,
        'id': identifier,
        'started_at': run.get('started_at'),
        'ended_at': run.get('ended_at'),
        'playbooks': list(run.get('playbooks') or []),
        'inventories': list(run.get('inventories') or []),
        'verdict': report.get('verdict'),
        'scenarios': scenarios,
    }


def parse_history(text):
    """One history file's text -> its entry; ValueError saying what is wrong otherwise."""
    try:
        entry = json.loads(text)
    except ValueError as ex:
        raise ValueError('not JSON (%s)' % ex)
    if not isinstance(entry, dict) or entry.get('schema') != HISTORY_SCHEMA:
        raise ValueError('schema is not %s' % HISTORY_SCHEMA)
    if not isinstance(entry.get('started_at'), str) or not isinstance(entry.get('scenarios'), list):
        raise ValueError('started_at (a string) or scenarios (a list) is missing')
    for scenario in entry['scenarios']:
        if not isinstance(scenario, dict) or not isinstance(scenario.get('name'), str):
            raise ValueError('a scenario without a name')
        for key in ('score', 'mttr_seconds'):
            if scenario.get(key) is not None and not _is_number(scenario.get(key)):
                raise ValueError('scenario %r: %s must be a number, got %r' % (scenario['name'], key, scenario.get(key)))
    return entry


def files_to_prune(names, keep):
    """The history files beyond the newest ``keep`` (names sort by run start time)."""
    ours = sorted(n for n in names if _RUN_ID_RE.match(n[:-len(HISTORY_SUFFIX)] if n.endswith(HISTORY_SUFFIX) else ''))
    if keep <= 0:
        return ours
    return ours[:-keep] if len(ours) > keep else []


def _scenario_key(scenario):
    return (scenario.get('name'), scenario.get('environment') or '')


def _mttr(scenario):
    """MTTR for comparison: a run without any failed sample had no outage, which is 0 s."""
    if _is_number(scenario.get('mttr_seconds')):
        return float(scenario['mttr_seconds'])
    if scenario.get('outage') is False:
        return 0.0
    return None


def regression(previous, current, tolerance=None):
    """Why ``current`` is worse than ``previous`` beyond the tolerance, or None.

    Worse means: the verdict went from PASS to anything else, the score fell by more than
    ``score_points``, or MTTR rose by more than ``mttr_percent`` of the previous MTTR and by at
    least ``mttr_min_seconds`` (so 0.1 s -> 0.2 s is noise, 2 s -> 10 s is not).
    """
    tolerance = dict(DEFAULT_TOLERANCE, **(tolerance or {}))
    reasons = []
    if previous.get('outcome') == 'PASS' and current.get('outcome') != 'PASS':
        reasons.append('verdict PASS \u2192 %s' % current.get('outcome'))
    before, now = previous.get('score'), current.get('score')
    if _is_number(before) and _is_number(now) and before - now > tolerance['score_points']:
        reasons.append('score %s \u2192 %s (down %s, tolerance %s points)' % (
            fmt_number(before), fmt_number(now), fmt_number(before - now), fmt_number(tolerance['score_points'])))
    before, now = _mttr(previous), _mttr(current)
    if before is not None and now is not None:
        rise = now - before
        if rise >= tolerance['mttr_min_seconds'] and rise > before * tolerance['mttr_percent'] / 100.0:
            reasons.append('MTTR %s \u2192 %s (tolerance %s %%)' % (
                fmt_number(before, 's'), fmt_number(now, 's'), fmt_number(tolerance['mttr_percent'])))
    return '; '.join(reasons) or None


def _short_time(started_at):
    """2026-11-30T07:57:43Z -> 11-30 07:57:43 (chart label and table cell)."""
    match = re.match(r'^\d{4}-(\d\d-\d\d)T(\d\d:\d\d:\d\d)', str(started_at or ''))
    return '%s %s' % match.groups() if match else plain_text(started_at, 20)


def trend_chart(name, rows):
    """A mermaid line chart of score and MTTR over the runs of one scenario (None below 2 runs)."""
    if len(rows) < 2:
        return None
    scores = [r['score'] if _is_number(r['score']) else 0 for r in rows]
    mttrs = [r['mttr'] if _is_number(r['mttr']) else 0 for r in rows]
    y_max = max(100, _nice_ceiling(max(mttrs + [1]) * 1.1))
    # The report's latency blue for the score, orange for MTTR.
    palette = ', '.join([colour for _key, _label, kind, colour in CHART_SERIES if kind == 'line'] + ['#ff7f0e'])
    lines = [
        '---', 'config:', '  xyChart:', '    width: 700', '    height: 300', '    showLegend: true',
        '  themeVariables:', '    xyChart:', '      plotColorPalette: "%s"' % palette, '---',
        'xychart-beta',
        '    title "%s - last %d runs"' % (mermaid_text(name, 48), len(rows)),
        '    x-axis "run" [%s]' % ', '.join('"%s"' % mermaid_text(r['when'], 20) for r in rows),
        '    y-axis "score / seconds" 0 --> %s' % fmt_number(float(y_max)),
        '    line "resilience score" [%s]' % ', '.join(fmt_number(float(v)) for v in scores),
        '    line "MTTR (s)" [%s]' % ', '.join(fmt_number(float(v)) for v in mttrs),
    ]
    return Markup('\n'.join(lines))


def build_trend(entries, current, runs=10, tolerance=None):
    """The report's Trend section: one item per scenario of the current run.

    entries are earlier history entries (any order); current is this run's entry. Each item:
    name, environment, rows (oldest first, at most ``runs``, the current run last, each with
    when, verdict, mark, score, mttr and their texts), chart, and worse (the regression text
    against the scenario's previous run, or None).
    """
    if not current:
        return []
    ordered = sorted((e for e in entries if isinstance(e, dict) and e.get('id') != current.get('id')),
                     key=lambda e: (str(e.get('started_at')), str(e.get('id'))))
    ordered.append(current)
    marks = {'PASS': MARK_PASS}
    trend = []
    for scenario in current.get('scenarios') or []:
        key = _scenario_key(scenario)
        history = []
        for entry in ordered:
            for candidate in entry.get('scenarios') or []:
                if isinstance(candidate, dict) and _scenario_key(candidate) == key:
                    history.append((entry, candidate))
                    break
        history = history[-max(int(runs), 1):]
        rows = [{
            'when': _short_time(entry.get('started_at')),
            'verdict': plain_text(candidate.get('outcome')),
            'mark': marks.get(candidate.get('outcome'), MARK_FAIL if candidate.get('outcome') else MARK_NONE),
            'score': candidate.get('score') if _is_number(candidate.get('score')) else None,
            'score_text': fmt_number(candidate.get('score')),
            'mttr': _mttr(candidate),
            'mttr_text': 'no outage' if _mttr(candidate) == 0 and candidate.get('outage') is False
            else fmt_number(_mttr(candidate), 's'),
            'current': entry is current,
        } for entry, candidate in history]
        worse = regression(history[-2][1], scenario, tolerance) if len(history) > 1 else None
        trend.append({'name': scenario['name'], 'environment': scenario.get('environment') or '',
                      'rows': rows, 'chart': trend_chart(scenario['name'], rows), 'worse': worse})
    return trend
