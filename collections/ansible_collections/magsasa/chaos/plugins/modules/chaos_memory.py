#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_memory
short_description: Hold a bounded amount of a host's memory resident for a bounded time
version_added: 0.1.0
description:
  - Starts a worker process that allocates the requested memory, writes every page of it so it
    is resident (not just reserved), and holds it until the fault's deadline.
  - Refuses, before anything is allocated, when the host would be left with less than
    O(min_available_mb) of available memory, so the fault never sets off the kernel's OOM killer.
  - Returns the resident set size the worker reached, measured with psutil.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
attributes:
  check_mode:
    description: Returns the plan (size, available memory, floor) and allocates nothing.
options:
  size_mb:
    description:
      - Memory to hold, in MiB. Exactly one of O(size_mb), O(size_percent) or O(intensity) is
        required with O(state=present).
    type: float
  size_percent:
    description:
      - Memory to hold, as a percentage (above 0, at most 100) of the host's total memory.
    type: float
  intensity:
    description:
      - Named size, V(light) 256 MiB, V(medium) 512 MiB, V(heavy) 1024 MiB.
    type: str
    choices: [light, medium, heavy]
  min_available_mb:
    description:
      - Safety floor. The fault is refused when the memory available now minus the size would
        fall below this many MiB.
      - Defaults to 512 MiB or 10 % of total memory, whichever is larger.
    type: float
requirements:
  - A Linux target (C(/proc/meminfo)).
  - psutil on the target, to measure the effect (the fault runs without it; RV(effect) then says so).
notes:
  - The worker's resident size includes the Python interpreter itself, a few MiB on top of the size asked for.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Hold 512 MiB for two minutes
  magsasa.chaos.chaos_memory:
    intensity: medium
    duration: 120

- name: Hold a quarter of the host's memory, keeping at least 2 GiB available
  magsasa.chaos.chaos_memory:
    size_percent: 25
    min_available_mb: 2048
    duration: 60
    lease: 15
  register: chaos_memory_fault

- name: Release it early
  magsasa.chaos.chaos_memory:
    state: absent
    fault_id: "{{ chaos_memory_fault.fault_id }}"
'''

RETURN = r'''
ended:
  description:
    - When O(fault_id) names a fault that is already over, how it ended - C(fault_id), C(reverted_by)
      (V(guard:deadline), V(guard:lease-expired), ...), C(reverted_at) and C(final_effect).
  returned: when O(state=absent) and the fault had already ended
  type: dict
fault_id:
  description: The id of the fault.
  returned: always
  type: str
  sample: memory-0b1c2d3e4f
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
kind:
  description: The fault kind, V(memory).
  returned: success and O(state=present)
  type: str
plan:
  description: What the fault does (size_mb, total_mb, available_mb, min_available_mb).
  returned: success and O(state=present)
  type: dict
started_at:
  description: Epoch seconds when the fault started.
  returned: success and O(state=present)
  type: float
injected_at:
  description: Epoch seconds when the injection was complete (the moment the fault took effect; metrics count from here).
  returned: success and O(state=present) and not in check mode
  type: float
start_slack:
  description:
    - Seconds this host waited for O(start_at) before injecting; below 0 when it was ready only after O(start_at)
      (the controller's lead was too short for it, and it injected late by that much).
  returned: success and O(start_at) given and not in check mode
  type: float
expires_at:
  description: Epoch seconds when the fault ends by itself.
  returned: success and O(state=present)
  type: float
lease_expires_at:
  description: Epoch seconds when an unrenewed lease ends the fault, or null.
  returned: success and O(state=present)
  type: float
renewed:
  description: Whether an identical active fault had its lease renewed instead of a new injection.
  returned: when an identical fault was already active
  type: bool
details:
  description: The worker process started (pid, start time).
  returned: success and O(state=present) and not check mode
  type: dict
effect:
  description: The memory held, measured with psutil.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    rss_mb:
      description: Resident set size of the worker, in MiB.
      type: float
    target_mb:
      description: The size asked for, in MiB.
      type: float
    ratio:
      description: RV(effect.rss_mb) divided by RV(effect.target_mb).
      type: float
    available_mb:
      description: Memory available on the host after the worker reached its size, in MiB.
      type: float
guard_pid:
  description: Pid of the detached guard process that reverts the fault.
  returned: success and O(state=present) and not check mode
  type: int
record:
  description: Path of the fault's JSON record.
  returned: success and O(state=present) and not check mode
  type: str
state_dir:
  description: The fault state directory.
  returned: always
  type: str
active_faults:
  description:
    - In check mode, the faults already active on the host, summarised as M(magsasa.chaos.chaos_faults) lists them
      (C(fault_id), C(kind), C(expires_at), C(remaining), C(guard_alive) ...), so a dry run shows what the fault
      would run beside. A chaos run's preflight takes its first experiment's active-fault lock from it.
  returned: check mode with O(state=present)
  type: list
  elements: dict
backstops:
  description: What stands behind the guard for this fault.
  returned: success with O(state=present) when a new fault was injected, not in check mode
  type: dict
  contains:
    watchdog:
      description: How the state directory's watchdog was started (V(process), or V(systemd:<unit>) where systemd
        is PID 1), V(running) when one already ran, or null when it could not be started.
      type: str
    timer:
      description: The transient systemd timer that reverts the fault at its deadline if nothing else did, or null
        where systemd is not PID 1.
      type: str
reverted:
  description: The fault ids reverted.
  returned: O(state=absent)
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, FaultError, fault_argument_spec, fault_required_if, run_fault_module)
from ansible_collections.magsasa.chaos.plugins.module_utils import _catalog, _stress

MEMINFO = '/proc/meminfo'


def read_meminfo():
    with open(MEMINFO, 'r') as handle:
        return _stress.parse_meminfo(handle.read())


class MemoryFault(Fault):
    kind = 'memory'

    def __init__(self, module):
        super(MemoryFault, self).__init__(module)
        self.size_mb = None
        self.memory = None

    def validate(self):
        params = self.params
        meminfo = read_meminfo()
        total_mb = meminfo['MemTotal'] / _stress.MIB
        available_mb = meminfo.get('MemAvailable', meminfo.get('MemFree', 0)) / _stress.MIB
        if params['size_mb'] is not None and params['size_mb'] <= 0:
            self.fail('`size_mb` must be greater than 0, got %s' % params['size_mb'])
        if params['size_percent'] is not None and not 0 < params['size_percent'] <= 100:
            self.fail('`size_percent` must be above 0 and at most 100, got %s' % params['size_percent'])
        size_mb = _stress.memory_target_mb(params['size_mb'], params['size_percent'], params['intensity'], total_mb)
        if size_mb > total_mb:
            field, value = self.size_field()
            self.fail('`%s` %s asks for %.0f MiB, more than this host\'s memory (%.0f MiB)'
                      % (field, value, size_mb, total_mb))
        floor_mb = params['min_available_mb']
        if floor_mb is None:
            floor_mb = _stress.default_memory_floor_mb(total_mb)
        elif floor_mb < 0:
            self.fail('`min_available_mb` must be 0 or more, got %s' % floor_mb)
        if available_mb - size_mb < floor_mb:
            field, value = self.size_field()
            self.fail('refusing `%s` %s: holding %.0f MiB would leave %.0f MiB available, below the '
                      '`min_available_mb` floor of %.0f MiB (available now %.0f MiB)'
                      % (field, value, size_mb, available_mb - size_mb, floor_mb, available_mb))
        self.size_mb = size_mb
        self.memory = dict(total_mb=round(total_mb, 1), available_mb=round(available_mb, 1),
                           min_available_mb=round(floor_mb, 1))

    def size_field(self):
        for field in ('size_mb', 'size_percent', 'intensity'):
            if self.params[field] is not None:
                return field, self.params[field]
        return 'size_mb', None

    def identity(self):
        field, value = self.size_field()
        return {field: value}

    def plan(self):
        plan = dict(size_mb=round(self.size_mb, 1))
        plan.update(self.memory)
        return plan

    def inject(self, ctx):
        size_bytes = int(self.size_mb * _stress.MIB)
        argv = _stress.python_worker_argv(ctx, 'memory', size_bytes, ctx.worker_deadline)
        worker = _stress.start_worker(ctx, argv, 'memory-worker')
        ctx.detail(processes=[worker], size_bytes=size_bytes)
        if _stress.HAS_PSUTIL:
            # Touching pages runs at well over 1 GiB/s; allow for a slow or busy host.
            rss = _stress.wait_for_rss(worker['pid'], size_bytes, timeout=min(ctx.remaining, 10.0 + self.size_mb / 200.0))
            if rss is None:
                raise FaultError('the memory worker (pid %d) exited before it held %.0f MiB'
                                 % (worker['pid'], self.size_mb))

    def measure(self, ctx):
        if not _stress.HAS_PSUTIL:
            return dict(error='psutil is not installed on the target; the resident size was not measured')
        rss = _stress.process_rss(ctx.record['details']['processes'][0]['pid']) or 0
        rss_mb = rss / _stress.MIB
        meminfo = read_meminfo()
        return dict(rss_mb=round(rss_mb, 1), target_mb=round(self.size_mb, 1),
                    ratio=round(rss_mb / self.size_mb, 3),
                    available_mb=round(meminfo.get('MemAvailable', 0) / _stress.MIB, 1))


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(
        size_mb=dict(type='float'),
        size_percent=dict(type='float'),
        intensity=dict(type='str', choices=list(_catalog.INTENSITIES)),
        min_available_mb=dict(type='float'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=fault_required_if() + [('state', 'present', ('size_mb', 'size_percent', 'intensity'), True)],
        mutually_exclusive=[('size_mb', 'size_percent', 'intensity')],
        supports_check_mode=True,
    )
    run_fault_module(module, MemoryFault)


if __name__ == '__main__':
    main()
