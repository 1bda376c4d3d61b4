# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The breaking-point search for playbooks: thin wrappers over plugin_utils/_breaking_point.py."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.magsasa.chaos.plugins.plugin_utils._breaking_point import (
    BreakingPointError, headroom, next_step, response_model, validate_spec,
)


def _guard(name, func, *args):
    try:
        return func(*args)
    except (BreakingPointError, TypeError, KeyError) as exc:
        raise AnsibleFilterError('magsasa.chaos.%s: %s' % (name, to_native(exc)))


def breaking_point_spec(spec):
    """The search with its defaults filled in; an impossible search is an error naming the field."""
    return _guard('breaking_point_spec', validate_spec, spec)


def breaking_point_next(steps, spec, elapsed=0):
    """The next value to try, or why the search is done."""
    return _guard('breaking_point_next', next_step, spec, steps, float(elapsed))


def breaking_point_model(steps, targets):
    """A least-squares fit per SLO metric against the ramped value, and where each SLO would break."""
    return _guard('breaking_point_model', response_model, steps, targets)


def breaking_point_headroom(knee, catalog, scenario_type, parameter):
    """The catalog's scenarios of this type against the measured knee."""
    return _guard('breaking_point_headroom', headroom, knee, catalog, scenario_type, parameter)


class FilterModule(object):
    """Breaking-point search filters."""

    def filters(self):
        return {
            'breaking_point_spec': breaking_point_spec,
            'breaking_point_next': breaking_point_next,
            'breaking_point_model': breaking_point_model,
            'breaking_point_headroom': breaking_point_headroom,
        }
