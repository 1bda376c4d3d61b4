# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Team notifications of a chaos run (pure functions: plain dicts in, webhook bodies out).

Three events: ``start`` (before the first experiment: what runs, where, for how long, started
by whom), ``violation`` (an experiment violated its SLOs, was aborted or failed) and
``finish`` (the verdict and where the report is). Each event renders as the body of a Slack
incoming webhook, a Mattermost incoming webhook, a Microsoft Teams connector card, or a
generic JSON document that carries every field (and a ``text`` for chat tools).

Webhook URLs are secrets (the path carries the token): nothing here puts one into an event or
a message; ``describe_url`` names only the host, and ``scrub`` removes a URL from error text.
"""

import re

from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import fmt_number, plain_text

FLAVOURS = ('slack', 'mattermost', 'teams', 'generic')
EVENTS = ('start', 'violation', 'finish')
SOURCE = 'magsasa.chaos'
_COLOURS = {'info': '#1f77b4', 'good': '#2ca02c', 'warning': '#ff7f0e', 'danger': '#d62728'}
_URL_RE = re.compile(r'^https?://[^/\s:@]+(:\d+)?(/\S*)?$')


# ---------------------------------------------------------------------------------------
# Destinations
# ---------------------------------------------------------------------------------------

def describe_url(url):
    """The scheme and host of a webhook URL, safe to print (the path holds the token)."""
    match = re.match(r'^(https?://)(?:[^/@\s]*@)?([^/\s?#]+)', str(url or ''))
    return '%s%s/...' % match.groups() if match else 'an invalid URL'


def scrub(text, urls):
    """Text (an error message) with every given secret URL replaced by its host."""
    text = plain_text(text, 500)
    for url in sorted((u for u in urls if u), key=len, reverse=True):
        text = text.replace(str(url), describe_url(url))
    return text


def destinations(slack_url='', webhook_url='', webhook_format='generic'):
    """The webhooks to notify: a list of {name, flavour, url}; ValueError names a bad field.

    ``slack_url`` is a Slack incoming webhook; ``webhook_url`` any JSON webhook whose body
    shape is ``webhook_format`` (generic, mattermost or teams). Empty means not configured.
    An error names the variable and what is wrong, never the URL itself.
    """
    if webhook_format not in FLAVOURS[1:]:
        raise ValueError('chaos_notify_webhook_format must be one of %s, got %r'
                         % (', '.join(FLAVOURS[1:]), plain_text(webhook_format, 40)))
    found = []
    for variable, name, flavour, url in (('chaos_notify_slack_webhook', 'slack', 'slack', slack_url),
                                         ('chaos_notify_webhook_url', 'json', webhook_format, webhook_url)):
        url = str(url or '').strip()
        if not url:
            continue
        if not _URL_RE.match(url):
            raise ValueError('%s must be an http(s) URL without credentials, got a value that is not '
                             '(starting %r)' % (variable, url[:8]))
        found.append({'name': name, 'flavour': flavour, 'url': url})
    return found


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------

def started_by(context):
    """Who or what started the run, from plain context (user, controller, AWX job, CI run)."""
    context = context or {}
    parts = []
    if context.get('awx_job_id'):
        parts.append('AWX job %s%s' % (plain_text(context['awx_job_id'], 20),
                                       ' launched by %s' % plain_text(context['awx_user'], 60)
                                       if context.get('awx_user') else ''))
    if context.get('ci_run_url'):
        parts.append('CI run %s%s' % (plain_text(context['ci_run_url'], 200),
                                      ' by %s' % plain_text(context['ci_actor'], 60) if context.get('ci_actor') else ''))
    user = plain_text(context.get('user'), 60)
    controller = plain_text(context.get('controller'), 80)
    if user or controller:
        parts.append('%s%s' % (user or 'someone', ' on %s' % controller if controller else ''))
    return '; '.join(parts) or 'unknown'


def hosts_of(pattern, groups):
    """The hosts a scenario's target names: a group's hosts, or a host of the inventory.

    Anything else (a pattern with : & ! or wildcards) is left to Ansible and yields no names.
    """
    pattern = str(pattern or '')
    if isinstance(groups.get(pattern), list):
        return list(groups[pattern])
    if pattern in (groups.get('all') or []):
        return [pattern]
    return []


def _duration_text(seconds):
    seconds = int(round(seconds))
    if seconds < 120:
        return '%d s' % seconds
    return '%d min %d s' % divmod(seconds, 60)


def start_event(plan):
    """The notification before the first experiment.

    plan: scenarios (list of {name, type, intensity, targets, duration, hosts}), groups (the
    inventory's groups, to name the hosts of scenarios without hosts), environment,
    inventories, playbook, check_mode, pause_between, per_experiment_overhead (seconds of
    baseline and recovery around each fault) and started_by (a context for started_by()).
    """
    scenarios = [s for s in plan.get('scenarios') or [] if isinstance(s, dict)]
    groups = plan.get('groups') if isinstance(plan.get('groups'), dict) else {}
    durations = [float(s['duration']) for s in scenarios if fmt_number(s.get('duration')) != 'n/a']
    overhead = float(plan.get('per_experiment_overhead') or 0)
    pause = float(plan.get('pause_between') or 0)
    estimate = sum(durations) + overhead * len(scenarios) + pause * max(len(scenarios) - 1, 0)
    environment = plain_text(plan.get('environment') or 'unspecified', 60)
    dry = bool(plan.get('check_mode'))
    experiments = [{
        'name': plain_text(s.get('name'), 120),
        'type': plain_text(s.get('type'), 40),
        'intensity': plain_text(s.get('intensity'), 20),
        'targets': plain_text(s.get('targets'), 120),
        'hosts': [plain_text(h, 80) for h in s.get('hosts') or hosts_of(s.get('targets'), groups)],
        'duration_seconds': s.get('duration'),
    } for s in scenarios]
    lines = ['%s %d experiment%s in %s%s, about %s in all:' % (
        'Planning (dry run)' if dry else 'Starting', len(experiments), '' if len(experiments) == 1 else 's',
        environment, ' (inventory %s)' % ', '.join(plain_text(i, 120) for i in plan.get('inventories') or [])
        if plan.get('inventories') else '', _duration_text(estimate))]
    for e in experiments:
        lines.append('- %s (%s%s, %s s) on %s' % (
            e['name'], e['type'], ', ' + e['intensity'] if e['intensity'] else '', fmt_number(e['duration_seconds']),
            ', '.join(e['hosts']) or e['targets'] or 'no host'))
    who = started_by(plan.get('started_by'))
    lines.append('Started by %s.' % who)
    return {
        'event': 'start',
        'severity': 'info',
        'title': 'Chaos run %s in %s' % ('planned (dry run)' if dry else 'starting', environment),
        'lines': lines,
        'fields': {'environment': environment, 'inventories': list(plan.get('inventories') or []),
                   'playbook': plain_text(plan.get('playbook'), 200), 'check_mode': dry,
                   'estimated_seconds': round(estimate, 1), 'started_by': who, 'experiments': experiments},
    }


def violation_event(view):
    """The notification for one experiment that violated its SLOs, was aborted or failed.

    view is an experiment view of plugin_utils._report.experiment_view (already redacted).
    """
    what = '; '.join(v['text'] for v in view.get('violations') or []) or view.get('reason') or view.get('outcome')
    title = 'Chaos experiment %s: %s' % (view.get('outcome'), view.get('name'))
    lines = ['%s (%s) in %s on %s: %s' % (view.get('name'), view.get('type'), view.get('environment') or 'unspecified',
                                          view.get('targets') or 'no host', plain_text(what, 400))]
    if view.get('outcome') == 'ABORTED':
        lines.append('A stop condition ended the fault early; it was reverted.')
    return {
        'event': 'violation',
        'severity': 'danger',
        'title': plain_text(title, 200),
        'lines': lines,
        'fields': {'experiment': view.get('name'), 'type': view.get('type'), 'environment': view.get('environment'),
                   'targets': view.get('targets'), 'outcome': view.get('outcome'), 'score': view.get('score'),
                   'reason': view.get('reason'), 'violations': [v['text'] for v in view.get('violations') or []]},
    }


def finish_event(report, report_location=None):
    """The notification after the run: the verdict, the counts, what went wrong, the report."""
    counts = report.get('counts') or {}
    verdict = report.get('verdict')
    environments = ', '.join(report.get('run', {}).get('environments') or []) or 'unspecified'
    lines = ['Verdict %s: %d experiment%s, %d passed, %d violated SLOs, %d aborted, %d failed, %d skipped.' % (
        verdict, counts.get('total', 0), '' if counts.get('total', 0) == 1 else 's', counts.get('passed', 0),
        counts.get('violated', 0), counts.get('aborted', 0), counts.get('failed', 0), counts.get('skipped', 0))]
    for view in report.get('violated') or []:
        what = '; '.join(v['text'] for v in view.get('violations') or []) or view.get('reason') or view.get('outcome')
        lines.append('- %s: %s' % (view.get('name'), plain_text(what, 300)))
    for item in report.get('trend') or []:
        if item.get('worse'):
            lines.append('- %s got worse than its previous run: %s' % (item['name'], item['worse']))
    if report_location:
        lines.append('Report: %s' % plain_text(report_location, 500))
    return {
        'event': 'finish',
        'severity': {'PASS': 'good', 'DRY RUN': 'info', 'NO EXPERIMENTS': 'info'}.get(verdict, 'danger'),
        'title': 'Chaos run finished in %s: %s' % (environments, verdict),
        'lines': lines,
        'fields': {'verdict': verdict, 'counts': dict(counts), 'environments': report.get('run', {}).get('environments') or [],
                   'started_at': report.get('run', {}).get('started_at'), 'ended_at': report.get('run', {}).get('ended_at'),
                   'report': report_location,
                   'violated': [{'experiment': v.get('name'), 'outcome': v.get('outcome')} for v in report.get('violated') or []]},
    }


# ---------------------------------------------------------------------------------------
# Bodies
# ---------------------------------------------------------------------------------------

def _slack_escape(text):
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def payload(event, flavour):
    """The JSON body of ``event`` for a webhook of the given flavour."""
    if flavour not in FLAVOURS:
        raise ValueError('flavour must be one of %s, got %r' % (', '.join(FLAVOURS), flavour))
    if event.get('event') not in EVENTS:
        raise ValueError('event must be one of %s, got %r' % (', '.join(EVENTS), event.get('event')))
    title, lines = event['title'], event['lines']
    text = '%s\n%s' % (title, '\n'.join(lines))
    if flavour == 'slack':
        body = '\n'.join(_slack_escape(line) for line in lines)
        return {'text': _slack_escape(text),
                'blocks': [{'type': 'header', 'text': {'type': 'plain_text', 'text': title[:150]}},
                           {'type': 'section', 'text': {'type': 'mrkdwn', 'text': body[:3000]}}]}
    if flavour == 'mattermost':
        return {'username': SOURCE, 'text': '#### %s\n%s' % (title, '\n'.join(lines))}
    if flavour == 'teams':
        return {'@type': 'MessageCard', '@context': 'https://schema.org/extensions', 'summary': title,
                'themeColor': _COLOURS[event['severity']].lstrip('#'), 'title': title,
                'text': '\n\n'.join(lines)}
    return dict(event['fields'], source=SOURCE, event=event['event'], severity=event['severity'],
                title=title, text=text)
