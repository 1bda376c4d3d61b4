#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_faults
short_description: List or revert the active chaos faults on a host
version_added: 0.1.0
description:
  - Reads the fault state directory that every magsasa.chaos fault module writes, lists the
    active faults, and reverts one, some or all of them from their records.
  - This is the per-host "revert everything" that C(playbooks/halt.yml) uses.
author:
  - magsasa.chaos maintainers (@magsasa)
attributes:
  check_mode:
    support: full
    description: With O(state=absent_all) or O(state=absent), reports what would be reverted and reverts nothing.
  diff_mode:
    support: none
    description: Nothing to diff; the reverted fault ids are returned instead.
  idempotent:
    support: full
    description: Reverting faults that are already gone changes nothing.
options:
  state:
    description:
      - V(query) returns the active faults and changes nothing.
      - V(absent) reverts the faults named in O(fault_ids).
      - V(absent_all) reverts every active fault, optionally only of the kinds in O(kinds).
      - V(renew) extends the lease of the faults named in O(fault_ids) by O(lease) seconds (never past
        their deadline). A fault that is gone is reported in RV(missing), never injected again, so a
        controller that renews too late cannot bring a fault back.
    type: str
    choices: [query, absent, absent_all, renew]
    default: query
  fault_ids:
    description:
      - The faults to revert with O(state=absent) or renew with O(state=renew). Ids that are not active are ignored.
      - With any O(state), RV(history) reports how each of them ended if it is no longer active.
    type: list
    elements: str
    default: []
  kinds:
    description:
      - Limit O(state=query) and O(state=absent_all) to these fault kinds (for example V(cpu), V(netem)).
    type: list
    elements: str
    default: []
  lease:
    description:
      - Seconds from now the lease of each fault runs with O(state=renew). Required with O(state=renew).
    type: float
  state_dir:
    description:
      - The fault state directory. Defaults to C(/run/magsasa-chaos) for root, C(~/.cache/magsasa-chaos) otherwise.
    type: path
  persist_dir:
    description:
      - The directory of the persistent record copies of faults that outlive a reboot. The records a previous
        boot left there (where no boot hook reverted them) are listed and reverted with the others.
      - Defaults to C(/var/lib/magsasa-chaos) for root, C(~/.local/state/magsasa-chaos) otherwise.
    type: path
  revert_timeout:
    description:
      - Seconds to keep retrying a failing revert step of one fault.
    type: float
    default: 60.0
'''

EXAMPLES = r'''
- name: What is injected on this host right now?
  magsasa.chaos.chaos_faults:
    state: query
  register: chaos_active

- name: Revert everything this collection injected here
  magsasa.chaos.chaos_faults:
    state: absent_all

- name: Keep an experiment's faults alive for another 15 seconds
  magsasa.chaos.chaos_faults:
    state: renew
    fault_ids: "{{ chaos_experiment_fault_ids }}"
    lease: 15

- name: Revert one experiment's faults
  magsasa.chaos.chaos_faults:
    state: absent
    fault_ids: "{{ chaos_experiment_fault_ids }}"
'''

RETURN = r'''
faults:
  description: The active faults (before reverting, for O(state=absent) and O(state=absent_all)).
  returned: always
  type: list
  elements: dict
  contains:
    fault_id:
      description: The fault's id.
      type: str
    kind:
      description: The fault kind (cpu, memory, disk, process, netem, container, db ...).
      type: str
    module:
      description: The module that injected it.
      type: str
    started_at:
      description: Epoch seconds when it was injected.
      type: float
    expires_at:
      description: Epoch seconds when the guard reverts it at the latest.
      type: float
    lease_expires_at:
      description: Epoch seconds when an unrenewed lease ends it, or null.
      type: float
    remaining:
      description: Seconds until the guard reverts it.
      type: float
    guard_alive:
      description: Whether the guard process of the fault is running.
      type: bool
    previous_boot:
      description: Whether the record was left by a previous boot (read from O(persist_dir)).
      type: bool
    plan:
      description: What the fault does, as its module described it.
      type: dict
reverted:
  description: The fault ids reverted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
renewed:
  description: The fault ids whose lease was renewed.
  returned: always
  type: list
  elements: str
missing:
  description: With O(state=renew), the requested fault ids that are no longer active.
  returned: always
  type: list
  elements: str
history:
  description:
    - For each id in O(fault_ids) that is no longer active, how it ended, from the state directory's history
      (times in this host's clock). Ids without a history entry are left out.
  returned: always
  type: list
  elements: dict
  contains:
    fault_id:
      description: The fault's id.
      type: str
    injected_at:
      description: Epoch seconds when the injection took effect.
      type: float
    revert_started_at:
      description: Epoch seconds when the revert began (the end of the fault's hold).
      type: float
    reverted_at:
      description: Epoch seconds when the revert was complete.
      type: float
    reverted_by:
      description:
        - Who reverted it, such as V(guard:deadline), V(guard:lease-expired), V(chaos_faults:absent) or V(module:absent).
      type: str
    revert_ok:
      description: Whether every revert step succeeded.
      type: bool
    final_effect:
      description:
        - What the fault's helper measured when it stopped (the nfqueue delayer of M(magsasa.chaos.chaos_netem) - its
          hold times and counters), or V(null).
      type: dict
    now:
      description: This host's clock when the entry was read.
      type: float
failures:
  description: Revert steps that failed, one string each; the fault stays listed so a later run can retry.
  returned: always
  type: list
  elements: str
final_effects:
  description:
    - What the helpers of the reverted faults measured, by fault id (the nfqueue delayer of
      M(magsasa.chaos.chaos_netem) - its hold times C(hold.p50_ms), C(hold.p95_ms) and counters).
  returned: when a reverted fault had a helper
  type: dict
state_dir:
  description: The state directory read.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils import _guard
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    active_records, default_persist_dir, default_state_dir, fault_summary)


class FaultInventory(object):
    """The active fault records of one host."""

    def __init__(self, module):
        self.module = module
        self.state_dir = module.params['state_dir'] or default_state_dir()
        self.persist_dir = module.params['persist_dir'] or default_persist_dir()

    def records(self):
        return active_records(self.state_dir, self.persist_dir, self.module.params['kinds'])

    def run(self):
        params = self.module.params
        records = self.records()
        now = time.time()
        result = dict(changed=False, faults=[fault_summary(d, r, now, d != self.state_dir) for d, r in records],
                      reverted=[], renewed=[], missing=[], failures=[], history=[], state_dir=self.state_dir)
        if params['state'] == 'query':
            result['history'] = self.history()
            return result
        if params['state'] == 'renew':
            return self.renew(result, now)
        if params['state'] == 'absent':
            wanted = set(params['fault_ids'])
            records = [(d, r) for d, r in records if r.get('fault_id') in wanted]
        if self.module.check_mode:
            result['reverted'] = [r['fault_id'] for _d, r in records]
            result['changed'] = bool(records)
            return result
        done = _guard.revert_many([(d, r['fault_id']) for d, r in records], 'chaos_faults:%s' % params['state'],
                                  timeout=params['revert_timeout'])
        result.update(reverted=done['reverted'], failures=done['failures'])
        if done['final_effects']:
            result['final_effects'] = done['final_effects']
        result['changed'] = bool(result['reverted'])
        result['history'] = self.history()
        return result

    def history(self):
        active = set(r.get('fault_id') for r in _guard.list_records(self.state_dir))
        found = []
        for fault_id in self.module.params['fault_ids']:
            entry = None if fault_id in active else _guard.read_history(self.state_dir, fault_id)
            if entry is not None:
                found.append(dict(fault_id=fault_id, injected_at=entry.get('injected_at'),
                                  revert_started_at=entry.get('revert_started_at'), reverted_at=entry.get('reverted_at'),
                                  reverted_by=entry.get('reverted_by'), revert_ok=entry.get('revert_ok'),
                                  final_effect=entry.get('final_effect'), now=time.time()))
        return found

    def renew(self, result, now):
        lease = self.module.params['lease']
        for fault_id in self.module.params['fault_ids']:
            if _guard.renew_lease(self.state_dir, fault_id, lease, now, dry_run=self.module.check_mode) is None:
                result['missing'].append(fault_id)
            else:
                result['renewed'].append(fault_id)
        result['changed'] = bool(result['renewed'])
        result['history'] = self.history()
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', default='query', choices=['query', 'absent', 'absent_all', 'renew']),
            fault_ids=dict(type='list', elements='str', default=[]),
            kinds=dict(type='list', elements='str', default=[]),
            state_dir=dict(type='path'),
            persist_dir=dict(type='path'),
            lease=dict(type='float'),
            revert_timeout=dict(type='float', default=60.0),
        ),
        required_if=[('state', 'absent', ('fault_ids',)), ('state', 'renew', ('fault_ids', 'lease'))],
        supports_check_mode=True,
    )
    if module.params['lease'] is not None and module.params['lease'] <= 0:
        module.fail_json(msg='lease must be greater than 0 seconds, got %s' % module.params['lease'])
    result = FaultInventory(module).run()
    if result['failures']:
        module.fail_json(msg='could not fully revert: %s' % '; '.join(result['failures']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
