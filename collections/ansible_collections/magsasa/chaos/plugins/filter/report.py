# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the roles share with the report (plugin_utils/_report.py): the run's outcome as the report
judges it, and the secret keys no record keeps."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import experiment_outcome, plain_text, redact

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


def without_secrets(params):
    """``params`` without the keys the report treats as secret (at any depth), URLs without credentials."""
    if not isinstance(params, Mapping):
        raise AnsibleFilterError('magsasa.chaos.without_secrets: the input must be a dict, got %s' % type(params).__name__)
    return redact(dict(params))


class FilterModule(object):
    """The run's outcome and what a record may keep."""

    def filters(self):
        return {'failing_experiments': failing_experiments, 'without_secrets': without_secrets}
