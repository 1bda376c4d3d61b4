# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Resilience metrics and SLO verdicts for playbooks: thin wrappers over module_utils/_metrics.py."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.magsasa.chaos.plugins.module_utils._metrics import (
    MetricsError, compute_metrics, evaluate_slo, evaluate_stop_condition, load_samples_file, timeline,
)


def _samples(samples_or_path):
    if isinstance(samples_or_path, str):
        return load_samples_file(samples_or_path)
    if isinstance(samples_or_path, (list, tuple)):
        return list(samples_or_path)
    raise MetricsError('the input must be a list of samples or the path of a samples file, got %s'
                       % type(samples_or_path).__name__)


def _guard(name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except (MetricsError, TypeError) as exc:
        raise AnsibleFilterError('magsasa.chaos.%s: %s' % (name, to_native(exc)))


def resilience_metrics(samples_or_path, fault_start=None, fault_end=None, observe_end=None, baseline_start=None,
                       recovery_samples=3, recovery_timeout=None):
    """The ``metrics`` record section from samples (or a JSONL samples file) and the fault window."""
    samples = _guard('resilience_metrics', _samples, samples_or_path)
    return _guard('resilience_metrics', compute_metrics, samples, fault_start=fault_start, fault_end=fault_end,
                  observe_end=observe_end, baseline_start=baseline_start, recovery_samples=recovery_samples,
                  recovery_timeout=recovery_timeout)


def slo_verdict(metrics, targets, expected=None):
    """The ``slo`` record section: checks, verdict and resilience score (expected violations marked)."""
    if not isinstance(metrics, dict):
        raise AnsibleFilterError('magsasa.chaos.slo_verdict: metrics must be a dict, got %r' % (metrics,))
    return _guard('slo_verdict', evaluate_slo, metrics, dict(targets or {}), expected)


def stop_condition(samples_or_path, window=20, max_error_rate_percent=None, max_consecutive_failures=None, since=None):
    """Whether an abort threshold was breached (error rate over a window, consecutive failures)."""
    samples = _guard('stop_condition', _samples, samples_or_path)
    return _guard('stop_condition', evaluate_stop_condition, samples, window=window,
                  max_error_rate_percent=max_error_rate_percent,
                  max_consecutive_failures=max_consecutive_failures, since=since)


def resilience_timeline(samples_or_path, fault_start=None, max_points=60):
    """At most ``max_points`` downsampled points, ``t`` relative to the fault start."""
    samples = _guard('resilience_timeline', _samples, samples_or_path)
    return _guard('resilience_timeline', timeline, samples, fault_start=fault_start, max_points=max_points)


class FilterModule(object):
    """Resilience metrics filters."""

    def filters(self):
        return {
            'resilience_metrics': resilience_metrics,
            'slo_verdict': slo_verdict,
            'stop_condition': stop_condition,
            'resilience_timeline': resilience_timeline,
        }
