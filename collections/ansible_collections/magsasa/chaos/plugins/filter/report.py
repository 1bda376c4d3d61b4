# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run's outcome for the chaos_suite role: the report's own judgement (plugin_utils/_report.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import experiment_outcome, plain_text

ERRORED = ('ERROR',)
VIOLATED = ('FAIL', 'ABORTED')


def failing_experiments(records, violations=False):
    """``name: OUTCOME - reason`` of each record that fails the run, in order: an experiment that
    could not be carried out always does; one that violated its SLOs or was aborted does when
    ``violations`` is true. The outcome is the one the report shows."""
    if not isinstance(records, (list, tuple)):
        raise AnsibleFilterError('magsasa.chaos.failing_experiments: the input must be a list of experiment records, '
                                 'got %s' % type(records).__name__)
    try:
        violations = boolean(violations, strict=True)
    except TypeError:
        raise AnsibleFilterError('magsasa.chaos.failing_experiments: violations must be true or false, got %r'
                                 % (violations,))
    failing = ERRORED + (VIOLATED if violations else ())
    found = []
    for record in records:
        if not isinstance(record, Mapping):
            continue
        outcome = experiment_outcome(record)
        if outcome in failing:
            reason = plain_text(record.get('reason'), 300)
            found.append('%s: %s%s' % (plain_text(record.get('name')) or 'unnamed', outcome,
                                       ' - %s' % reason if reason else ''))
    return found


class FilterModule(object):
    """The run's outcome."""

    def filters(self):
        return {'failing_experiments': failing_experiments}
