# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Lists the collection keeps once: the SLO metrics with their targets, the default SLO, the bounds of
the stop conditions and the scenario intensities. Metrics, report, preflight and the roles (through
the ``magsasa.chaos.chaos_catalog`` filter) read them from here."""


# (target key in the SLO, metric key in the record's metrics, comparison, label, unit)
SLO_METRICS = (
    ('mttr_seconds', 'mttr_seconds', '<=', 'MTTR', 's'),
    ('max_error_rate_percent', 'error_rate_percent', '<=', 'Error rate', '%'),
    ('min_availability_percent', 'availability_percent', '>=', 'Availability', '%'),
    ('max_latency_degradation_ms', 'latency_degradation_ms', '<=', 'Latency degradation', 'ms'),
    ('max_recovery_seconds', 'recovery_seconds', '<=', 'Recovery time', 's'),
)

# The SLO an experiment is judged against when the inventory sets no chaos_slo.
SLO_DEFAULTS = {
    'mttr_seconds': 30,
    'max_error_rate_percent': 5,
    'min_availability_percent': 95,
    'max_latency_degradation_ms': 500,
    'max_recovery_seconds': 10,
}

# The smallest value each stop condition accepts: a window of one sample, and never a single
# failed sample (a blip) as the reason to abort.
STOP_CONDITION_MINIMUM = {'window': 1, 'max_consecutive_failures': 2}

INTENSITIES = ('light', 'medium', 'heavy')


def catalog():
    """Everything above as plain data (what the filter gives the roles)."""
    return {
        'slo_metrics': [dict(target=t, metric=m, op=op, label=label, unit=unit) for t, m, op, label, unit in SLO_METRICS],
        'slo_targets': [t for t, dummy, dummy, dummy, dummy in SLO_METRICS],
        'slo_metric_names': [m for dummy, m, dummy, dummy, dummy in SLO_METRICS],
        'slo_defaults': dict(SLO_DEFAULTS),
        'stop_condition_minimum': dict(STOP_CONDITION_MINIMUM),
        'intensities': list(INTENSITIES),
    }
