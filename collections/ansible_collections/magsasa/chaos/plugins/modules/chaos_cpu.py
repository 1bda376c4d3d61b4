#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_cpu
short_description: Load the CPUs of a host for a bounded time
version_added: 0.1.0
description:
  - Starts CPU workers that each load one CPU by O(load_percent) until the fault's deadline,
    with stress-ng when it is installed and Python worker processes otherwise.
  - Every worker carries its own deadline and runs in its own session; the fault's guard also
    kills the workers' process groups at the deadline, at the end of an unrenewed lease, or on
    O(state=absent).
  - Returns the CPU load the workers actually reached, measured with psutil.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
attributes:
  check_mode:
    description: Returns the plan (engine, workers, load, affinity) and starts nothing.
options:
  workers:
    description:
      - Number of CPU workers, each loading one CPU. Mutually exclusive with O(intensity).
      - One of O(workers) or O(intensity) is required with O(state=present).
    type: int
  intensity:
    description:
      - Named worker count, V(light) 2, V(medium) 4, V(heavy) 8 workers. Mutually exclusive with O(workers).
    type: str
    choices: [light, medium, heavy]
  load_percent:
    description:
      - Load of each worker on its CPU, 1 to 100 percent. Below 100 the workers alternate busy
        and idle slices of a 100 ms period.
    type: int
    default: 100
  cpu_affinity:
    description:
      - Pin the workers to these CPU numbers. Every number must be a CPU this host lets the module use.
    type: list
    elements: int
  engine:
    description:
      - V(stress-ng) runs C(stress-ng --cpu --cpu-load) with C(--timeout) set to the time left.
      - V(python) runs one C(python -c) worker process per worker.
      - V(auto) picks V(stress-ng) when it is installed, V(python) otherwise.
    type: str
    choices: [auto, stress-ng, python]
    default: auto
requirements:
  - psutil on the target, to measure the effect (the fault runs without it; RV(effect) then says so).
  - stress-ng on the target for O(engine=stress-ng).
notes:
  - The measured load is of the workers' own processes, so other work on the host does not distort it.
  - stress-ng times its busy and idle slices by the wall clock, so on a host whose CPUs are already
    saturated its workers get less than O(load_percent). The V(python) workers count their own CPU
    time and keep to O(load_percent) as long as the scheduler gives them that share.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Load two CPUs fully for a minute
  magsasa.chaos.chaos_cpu:
    intensity: light
    duration: 60

- name: One worker at half load on CPU 0, ended early unless renewed every 10 s
  magsasa.chaos.chaos_cpu:
    workers: 1
    load_percent: 50
    cpu_affinity: [0]
    engine: python
    duration: 300
    lease: 10
    fault_id: cpu-half-load
  register: chaos_cpu_fault

- name: End it early
  magsasa.chaos.chaos_cpu:
    state: absent
    fault_id: cpu-half-load
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
  sample: cpu-3f2a9c1b0d
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
kind:
  description: The fault kind, V(cpu).
  returned: success and O(state=present)
  type: str
plan:
  description: What the fault does (engine, workers, load_percent, cpu_affinity).
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
  description: The processes started.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    engine:
      description: The engine used.
      type: str
    processes:
      description: The process started per worker (python) or the stress-ng leader, with pid and start time.
      type: list
      elements: dict
effect:
  description: The CPU load the workers reached, measured with psutil over about 1.5 s.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    workers:
      description: Per worker process, its pid, name and CPU percent (100 is one CPU fully busy).
      type: list
      elements: dict
    total_percent:
      description: The sum over the workers.
      type: float
    target_percent_per_worker:
      description: O(load_percent).
      type: int
    target_total_percent:
      description: Workers times O(load_percent).
      type: int
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, fault_argument_spec, fault_required_if, run_fault_module)
from ansible_collections.magsasa.chaos.plugins.module_utils import _catalog, _stress

MAX_WORKERS = 1024


class CpuFault(Fault):
    kind = 'cpu'

    def validate(self):
        params = self.params
        workers = self.workers()
        if not 1 <= workers <= MAX_WORKERS:
            self.fail('`workers` must be 1-%d, got %s' % (MAX_WORKERS, workers))
        if not 1 <= params['load_percent'] <= 100:
            self.fail('`load_percent` must be 1-100, got %s' % params['load_percent'])
        if params['cpu_affinity'] is not None:
            available = sorted(os.sched_getaffinity(0))
            wrong = _stress.invalid_cpus(params['cpu_affinity'], available)
            if wrong or not params['cpu_affinity']:
                self.fail('`cpu_affinity` must list CPUs of this host (%s), got %s'
                          % (_stress.format_cpu_list(available), params['cpu_affinity']))
        if params['engine'] == 'stress-ng' and not self.module.get_bin_path('stress-ng'):
            self.fail('`engine` is stress-ng, but stress-ng is not installed on this host; '
                      'install it or use engine=python')

    def workers(self):
        if self.params['workers'] is not None:
            return self.params['workers']
        return _stress.INTENSITY_CPU_WORKERS[self.params['intensity']]

    def engine(self):
        if self.params['engine'] == 'auto':
            return 'stress-ng' if self.module.get_bin_path('stress-ng') else 'python'
        return self.params['engine']

    def identity(self):
        return dict(workers=self.workers(), load_percent=self.params['load_percent'],
                    cpu_affinity=sorted(self.params['cpu_affinity'] or []), engine=self.params['engine'])

    def plan(self):
        plan = self.identity()
        plan['engine'] = self.engine()
        return plan

    def inject(self, ctx):
        cpus = self.params['cpu_affinity'] or []
        workers = self.workers()
        load = self.params['load_percent']
        processes = []
        if self.engine() == 'stress-ng':
            argv = _stress.stress_ng_cpu_argv(self.module.get_bin_path('stress-ng', required=True), workers, load,
                                              _stress.stress_ng_timeout(ctx.worker_remaining), cpus)
            processes.append(_stress.start_worker(ctx, argv, 'stress-ng'))
            ctx.detail(engine='stress-ng', processes=processes)
            if _stress.HAS_PSUTIL:
                _stress.wait_for_children(processes[0]['pid'], workers)
        else:
            for index in range(workers):
                argv = _stress.python_worker_argv(ctx, 'cpu', ctx.worker_deadline, load,
                                                  _stress.CPU_PERIOD, _stress.format_cpu_list(cpus))
                processes.append(_stress.start_worker(ctx, argv, 'cpu-worker-%d' % index))
                ctx.detail(engine='python', processes=processes)

    def measure(self, ctx):
        if not _stress.HAS_PSUTIL:
            return dict(error='psutil is not installed on the target; the load was not measured')
        pids = [p['pid'] for p in ctx.record['details']['processes']]
        effect = _stress.measure_cpu(pids, interval=min(1.5, max(0.2, ctx.remaining - 0.5)))
        if ctx.record['details']['engine'] == 'stress-ng':
            # The stress-ng leader only supervises; the load is in its forked workers.
            effect['workers'] = [w for w in effect['workers'] if w['pid'] not in pids]
            effect['total_percent'] = round(sum(w['cpu_percent'] for w in effect['workers']), 1)
        effect['target_percent_per_worker'] = self.params['load_percent']
        effect['target_total_percent'] = self.params['load_percent'] * self.workers()
        return effect


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(
        workers=dict(type='int'),
        intensity=dict(type='str', choices=list(_catalog.INTENSITIES)),
        load_percent=dict(type='int', default=100),
        cpu_affinity=dict(type='list', elements='int'),
        engine=dict(type='str', default='auto', choices=['auto', 'stress-ng', 'python']),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=fault_required_if() + [('state', 'present', ('workers', 'intensity'), True)],
        mutually_exclusive=[('workers', 'intensity')],
        supports_check_mode=True,
    )
    run_fault_module(module, CpuFault)


if __name__ == '__main__':
    main()
