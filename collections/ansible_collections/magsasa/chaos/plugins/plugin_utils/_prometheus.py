# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Prometheus export of a chaos run (controller side: the chaos_report callback, the chaos_pushgateway action).

* metric_families(records, started, ended, target_labels) -> plain data: one dict per metric
  family with its samples (pure, unit-tested without prometheus_client)
* registry_for(families) -> a prometheus_client registry holding exactly those families
* PrometheusExport(options).export(records, started, ended) -> writes the node-exporter textfile
  and pushes to a Pushgateway, each when configured; returns what happened as messages
* run_start(records, default) -> the run's start as its records show it (for the chaos_pushgateway
  action, which pushes from a task when the push is required)

Metric names derive from the report's METRICS table, so the report, chaos_results.json and
Prometheus share one list of metrics.
"""

import base64
import os
import re

import yaml

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.exposition import default_handler, push_to_gateway, write_to_textfile
    HAS_PROMETHEUS_CLIENT = True
    PROMETHEUS_CLIENT_IMPORT_ERROR = None
except ImportError as exc:
    HAS_PROMETHEUS_CLIENT = False
    PROMETHEUS_CLIENT_IMPORT_ERROR = exc

from ansible_collections.magsasa.chaos.plugins.doc_fragments.prometheus_export import ModuleDocFragment
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import (
    METRICS, experiment_outcome, redact, _is_number,
)

PREFIX = 'chaos_'
EXPERIMENT_LABELS = ('scenario', 'type', 'intensity', 'environment')
TARGETS_LABEL = 'targets'
DEFAULT_JOB = 'magsasa_chaos'
# The callback options this module reads: the ones its doc fragment documents.
EXPORT_OPTIONS = tuple(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options'])
MISSING_LIBRARY = ('the prometheus_client Python library is needed on the controller for the Prometheus export '
                   '(pip install prometheus-client, listed in requirements.txt): %s')
_LABEL_NAME_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')


class PrometheusExportError(ValueError):
    """A bad export option, named with its value."""


def _label_value(value):
    return '' if value is None else str(value)


def experiment_labels(record, target_labels=False):
    """The label set of one experiment: scenario, type, intensity, environment (+ targets when asked)."""
    labels = {
        'scenario': _label_value(record.get('name')),
        'type': _label_value(record.get('type')),
        'intensity': _label_value(record.get('intensity')),
        'environment': _label_value(record.get('environment')),
    }
    if target_labels:
        labels[TARGETS_LABEL] = ','.join(sorted(str(t) for t in (record.get('targets') or [])))
    return labels


def _window(record, key):
    window = record.get('window') if isinstance(record.get('window'), dict) else {}
    value = window.get(key)
    return float(value) if _is_number(value) else None


def experiment_duration(record):
    """Seconds from the baseline start (or fault start) to the end of observation, or None."""
    start = _window(record, 'baseline_start')
    if start is None:
        start = _window(record, 'fault_start')
    end = _window(record, 'observe_end')
    if end is None:
        end = _window(record, 'fault_end')
    if start is None or end is None or end < start:
        return None
    return end - start


def run_start(records, default):
    """When a run began, seen from its records: the earliest baseline (or fault) start, else ``default``.

    The chaos_pushgateway action has no other view of the run's start than its records."""
    starts = [_window(r, 'baseline_start') if _window(r, 'baseline_start') is not None else _window(r, 'fault_start')
              for r in records if isinstance(r, dict)]
    starts = [s for s in starts if s is not None]
    return min(starts) if starts else default


def _experiment_values(record):
    """(metric name, value) of one experiment that has something to say; None values are left out."""
    metrics = record.get('metrics') if isinstance(record.get('metrics'), dict) else {}
    values = [(PREFIX + key, metrics.get(key)) for key, _target, _label, _unit, _op in METRICS]
    slo = record.get('slo') if isinstance(record.get('slo'), dict) else {}
    values.append((PREFIX + 'resilience_score', slo.get('score')))
    outcome = experiment_outcome(record)
    if outcome in ('PASS', 'FAIL', 'ABORTED', 'ERROR'):
        values.append((PREFIX + 'slo_pass', 1 if outcome == 'PASS' else 0))
    values.append((PREFIX + 'experiment_duration_seconds', experiment_duration(record)))
    return [(name, float(value)) for name, value in values if _is_number(value)]


def _help():
    texts = dict((PREFIX + key, '%s of the last chaos experiment of this scenario (%s)' % (label, unit))
                 for key, _target, label, unit, _op in METRICS)
    texts.update({
        PREFIX + 'resilience_score': 'Resilience score (0-100) of the last chaos experiment of this scenario',
        PREFIX + 'slo_pass': '1 when the last chaos experiment of this scenario met every SLO, 0 when it did not '
                             '(violated, aborted or failed); violations declared as expected do not count',
        PREFIX + 'experiment_duration_seconds': 'Seconds from baseline start to end of observation of the last '
                                                'chaos experiment of this scenario',
    })
    return texts


def metric_families(records, started=None, ended=None, target_labels=False):
    """The metric families of one run as plain data, in a stable order.

    Returns ``(families, warnings)``. Each family is ``{'name', 'type', 'help', 'labels', 'samples'}``
    with samples as ``(label values tuple, value)``. Two experiments with the same label set
    (the same scenario run twice) keep the last one's values and say so in ``warnings``.
    """
    records = [redact(r) for r in records if isinstance(r, dict)]
    label_names = EXPERIMENT_LABELS + ((TARGETS_LABEL,) if target_labels else ())
    helps = _help()
    order = [PREFIX + key for key, _t, _l, _u, _o in METRICS] + [
        PREFIX + 'resilience_score', PREFIX + 'slo_pass', PREFIX + 'experiment_duration_seconds']
    per_metric = dict((name, {}) for name in order)
    seen = set()
    warnings = []
    counts = {}
    for record in records:
        labels = experiment_labels(record, target_labels)
        key = tuple(labels[name] for name in label_names)
        if key in seen:
            warnings.append('scenario %r ran more than once with the same labels; Prometheus gets the last run\'s '
                            'values' % labels['scenario'])
        seen.add(key)
        for name, value in _experiment_values(record):
            per_metric[name][key] = value
        status_key = (experiment_outcome(record).lower().replace(' ', '_'), labels['environment'])
        counts[status_key] = counts.get(status_key, 0) + 1
    families = [{'name': name, 'type': 'gauge', 'help': helps[name], 'labels': label_names,
                 'samples': sorted(per_metric[name].items())} for name in order]
    families.append({'name': PREFIX + 'experiments', 'type': 'counter',
                     'help': 'Chaos experiments of the run by outcome (pass, fail, aborted, error, skipped, dry_run)',
                     'labels': ('status', 'environment'), 'samples': sorted(counts.items())})
    for name, value, what in (('run_start_timestamp_seconds', started, 'started'),
                              ('run_end_timestamp_seconds', ended, 'ended')):
        if _is_number(value):
            families.append({'name': PREFIX + name, 'type': 'gauge', 'labels': (), 'samples': [((), float(value))],
                             'help': 'Unix time the chaos run %s' % what})
    return families, warnings


def registry_for(families):
    """A fresh CollectorRegistry exposing exactly ``families`` (no process or platform metrics)."""
    class _RunCollector(object):
        def collect(self):
            for family in families:
                kind = CounterMetricFamily if family['type'] == 'counter' else GaugeMetricFamily
                metric = kind(family['name'], family['help'], labels=list(family['labels']))
                for label_values, value in family['samples']:
                    metric.add_metric(list(label_values), value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunCollector())
    return registry


def parse_grouping_key(items):
    """``['environment=staging', 'team=sre']`` -> dict; a malformed item or label name raises, naming it."""
    grouping = {}
    for item in items or []:
        text = str(item).strip()
        if not text:
            continue
        name, sep, value = text.partition('=')
        name = name.strip()
        if not sep or not _LABEL_NAME_RE.match(name) or name == 'job':
            raise PrometheusExportError(
                'pushgateway_grouping_key entries must be label=value with a Prometheus label name other than job, '
                'got %r' % text)
        grouping[name] = value.strip()
    return grouping


def safe_url(url):
    """The URL without credentials, for messages."""
    return redact(str(url))


def auth_handler(username=None, password=None, token=None):
    """A prometheus_client push handler that adds basic auth or a bearer token to the request."""
    if token and username:
        raise PrometheusExportError('give either a Pushgateway bearer token or a username/password, not both')
    extra = []
    if token:
        extra = [('Authorization', 'Bearer %s' % token)]
    elif username:
        credentials = base64.b64encode(('%s:%s' % (username, password or '')).encode('utf-8')).decode('ascii')
        extra = [('Authorization', 'Basic %s' % credentials)]

    def handler(url, method, timeout, headers, data):
        return default_handler(url, method, timeout, list(headers) + extra, data)
    return handler


class PrometheusExport(object):
    """Write the textfile and push to the Pushgateway from the callback's options.

    ``options`` maps the callback option names (prometheus_textfile, pushgateway_url, ...) to values.
    """

    def __init__(self, options):
        self.options = options

    @property
    def enabled(self):
        return bool(self.options.get('prometheus_textfile') or self.options.get('pushgateway_url'))

    def export(self, records, started, ended):
        """Returns ``(messages, push_failed)``; messages are ``(level, text)`` with level info|warning|error."""
        if not self.enabled:
            return [], False
        if not HAS_PROMETHEUS_CLIENT:
            return [('error', MISSING_LIBRARY % PROMETHEUS_CLIENT_IMPORT_ERROR)], bool(self.options.get('pushgateway_url'))
        families, warnings = metric_families(records, started, ended,
                                             target_labels=bool(self.options.get('prometheus_target_labels')))
        messages = [('warning', 'chaos_report: %s' % w) for w in warnings]
        registry = registry_for(families)
        textfile = self.options.get('prometheus_textfile')
        if textfile:
            messages.append(self._write_textfile(textfile, registry))
        push_failed = False
        if self.options.get('pushgateway_url'):
            message = self._push(registry)
            push_failed = message[0] != 'info'
            messages.append(message)
        return messages, push_failed

    @staticmethod
    def _write_textfile(path, registry):
        try:
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            write_to_textfile(path, registry)  # a temp file beside it, then rename(2): readers never see half
        except OSError as ex:
            return ('warning', 'chaos_report: could not write the Prometheus textfile %s: %s' % (path, ex))
        return ('info', 'chaos_report: Prometheus metrics written to %s' % path)

    def _push(self, registry):
        url = self.options['pushgateway_url']
        where = safe_url(url)
        try:
            grouping = parse_grouping_key(self.options.get('pushgateway_grouping_key'))
            handler = auth_handler(self.options.get('pushgateway_username'), self.options.get('pushgateway_password'),
                                   self.options.get('pushgateway_token'))
            push_to_gateway(url, job=self.options.get('pushgateway_job') or DEFAULT_JOB, registry=registry,
                            grouping_key=grouping, timeout=float(self.options.get('pushgateway_timeout') or 10),
                            handler=handler)
        except PrometheusExportError as ex:
            return ('error', 'chaos_report: metrics not pushed to the Pushgateway at %s: %s' % (where, ex))
        except Exception as ex:  # URLError, HTTPError, timeouts, a refused push: reported, never a traceback
            detail = safe_url(str(ex))
            for secret in (self.options.get('pushgateway_password'), self.options.get('pushgateway_token')):
                if secret:
                    detail = detail.replace(str(secret), '***')
            return ('error', 'chaos_report: could not push metrics to the Pushgateway at %s: %s: %s'
                    % (where, type(ex).__name__, detail))
        return ('info', 'chaos_report: metrics pushed to the Pushgateway at %s (job %s)'
                % (where, self.options.get('pushgateway_job') or DEFAULT_JOB))
