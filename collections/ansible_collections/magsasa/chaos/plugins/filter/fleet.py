# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters of an experiment over many hosts: thin wrappers over module_utils/_fleet.py."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.magsasa.chaos.plugins.module_utils import _fleet


def chaos_targets(matched, in_play, max_hosts, pattern):
    """``{targets, skip_reason, note}`` of a scenario (see module_utils/_fleet.select_targets)."""
    try:
        targets, skip, note = _fleet.select_targets(list(matched), list(in_play), max_hosts, pattern)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError('magsasa.chaos.chaos_targets: %s' % to_native(exc))
    return {'targets': targets, 'skip_reason': skip or '', 'note': note}


def chaos_host_parts(hosts, hostvars):
    """Each target's part of the record, from the results its tasks registered."""
    return _fleet.host_parts(list(hosts), hostvars)


def chaos_inject_results(hosts, hostvars):
    """What each target's injection reported (details, effect, plan)."""
    return _fleet.inject_results(list(hosts), hostvars)


def chaos_busy_faults(hosts, hostvars, preflight_fresh=False):
    """The ids of the faults the targets already carry, from each one's lock query (or, for the
    first experiment of a run, from the run's preflight)."""
    return _fleet.busy_faults(list(hosts), hostvars, preflight_fresh)


def chaos_lock_hosts(hosts, hostvars, preflight_fresh=False):
    """The targets an experiment's active-fault lock must ask (the first experiment takes the others'
    answer from the run's preflight)."""
    return _fleet.lock_hosts(list(hosts), hostvars, preflight_fresh)


def chaos_rollback_hosts(hosts, hostvars):
    """The targets to roll back and check for residue: all but those proven clean by their holder."""
    return _fleet.rollback_hosts(list(hosts), hostvars)


def chaos_outcome(parts):
    """``{status, reason, spread}`` the hosts' parts force on the experiment."""
    status, reason = _fleet.experiment_outcome(parts)
    return {'status': status, 'reason': reason, 'spread': _fleet.spread(parts)}


class FilterModule(object):
    """Fleet filters."""

    def filters(self):
        return {
            'chaos_targets': chaos_targets,
            'chaos_host_parts': chaos_host_parts,
            'chaos_outcome': chaos_outcome,
            'chaos_inject_results': chaos_inject_results,
            'chaos_busy_faults': chaos_busy_faults,
            'chaos_lock_hosts': chaos_lock_hosts,
            'chaos_rollback_hosts': chaos_rollback_hosts,
        }
