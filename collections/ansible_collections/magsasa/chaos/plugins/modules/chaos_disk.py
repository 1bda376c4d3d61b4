#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_disk
short_description: Stress a filesystem with bounded write, fsync and read workers
version_added: 0.1.0
description:
  - Creates a scratch directory under O(path) and starts I/O workers in it until the fault's
    deadline. V(write) workers write their file over and over (buffered, flushed once a pass),
    V(fsync) workers call fsync after every 1 MiB block, V(read) workers write their file once
    and then read it back again and again, dropping it from the page cache before each pass.
  - The files never grow beyond O(total_mb) together; workers rewrite them in place.
  - Refuses, before writing anything, when the filesystem's free space would fall below
    O(min_free_mb) or O(min_free_percent).
  - The scratch directory and every file in it are removed when the fault is reverted.
  - Returns the bytes the workers actually wrote (and read) so far.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
attributes:
  check_mode:
    description: Returns the plan (scratch location, workers, space check) and writes nothing.
options:
  path:
    description:
      - An existing directory on the filesystem to stress; the scratch directory is created in it.
      - Required with O(state=present).
    type: path
  mode:
    description:
      - The kinds of I/O workers to run; O(workers) of each kind are started.
    type: list
    elements: str
    choices: [write, fsync, read]
    default: [write]
  workers:
    description:
      - Number of workers of each kind in O(mode), 1 to 64.
    type: int
    default: 1
  total_mb:
    description:
      - Upper bound, in MiB, on the space all the workers' files take together; it is split
        evenly between the workers (at least 1 MiB each).
    type: int
    default: 256
  min_free_mb:
    description:
      - Refuse when the free space left after writing O(total_mb) would be under this many MiB.
    type: int
    default: 1024
  min_free_percent:
    description:
      - Refuse when the free space left after writing O(total_mb) would be under this
        percentage of the filesystem.
    type: float
    default: 10.0
requirements:
  - psutil on the target, for the storage-level byte counts in RV(effect) (optional).
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Hammer /var with fsync-heavy writes for a minute, within 512 MiB
  magsasa.chaos.chaos_disk:
    path: /var/tmp
    mode: [write, fsync]
    workers: 2
    total_mb: 512
    duration: 60

- name: Read pressure on the data volume, ended early unless renewed
  magsasa.chaos.chaos_disk:
    path: /srv/data
    mode: [read]
    total_mb: 1024
    min_free_percent: 20
    duration: 600
    lease: 30
    fault_id: data-read-stress
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
  sample: disk-5e6f7a8b9c
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
kind:
  description: The fault kind, V(disk).
  returned: success and O(state=present)
  type: str
plan:
  description: What the fault does (path, mode, workers, total_mb, free space before and after).
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
  description: The scratch directory and the worker processes started.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    scratch_dir:
      description: The directory holding the workers' files, removed on revert.
      type: str
    processes:
      description: One entry per worker with its pid, start time and mode.
      type: list
      elements: dict
effect:
  description: The I/O done so far, about a second after the workers started.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    bytes_written:
      description: Bytes the workers wrote, from their own counters.
      type: int
    bytes_read:
      description: Bytes the read workers read back.
      type: int
    fsyncs:
      description: fsync calls made.
      type: int
    scratch_bytes:
      description: Bytes in the scratch directory's files now.
      type: int
    storage_write_bytes:
      description: Bytes the kernel accounted as sent to storage for the workers (psutil), when available.
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
boot_hook:
  description: What reverts the fault after a reboot, installed with the first fault that outlives one
    and removed with the last; null (with a warning) where the host has neither systemd as PID 1 nor C(crontab).
  returned: success with O(state=present) when a new fault that outlives a reboot was injected, not in check mode
  type: dict
  contains:
    type:
      description: V(systemd) (a unit enabled for the next boot) or V(cron) (an C(@reboot) crontab entry).
      type: str
    name:
      description: The unit name, or the crontab line.
      type: str
reverted:
  description: The fault ids reverted.
  returned: O(state=absent)
  type: list
  elements: str
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, fault_argument_spec, fault_required_if, run_fault_module)
from ansible_collections.magsasa.chaos.plugins.module_utils import _stress

MAX_WORKERS = 64


class DiskFault(Fault):
    kind = 'disk'

    def __init__(self, module):
        super(DiskFault, self).__init__(module)
        self.space = None

    def outlives_reboot(self):
        return True  # the files stay on disk

    def validate(self):
        params = self.params
        path = params['path']
        if not os.path.isdir(path):
            self.fail('`path` must be an existing directory, got %s' % path)
        if not params['mode']:
            self.fail('`mode` must list at least one of %s, got []' % ', '.join(_stress.DISK_MODES))
        if not 1 <= params['workers'] <= MAX_WORKERS:
            self.fail('`workers` must be 1-%d, got %s' % (MAX_WORKERS, params['workers']))
        if params['total_mb'] < 1:
            self.fail('`total_mb` must be 1 or more, got %s' % params['total_mb'])
        if params['min_free_mb'] < 0:
            self.fail('`min_free_mb` must be 0 or more, got %s' % params['min_free_mb'])
        if not 0 <= params['min_free_percent'] < 100:
            self.fail('`min_free_percent` must be 0 up to 100, got %s' % params['min_free_percent'])
        stat = os.statvfs(path)
        free = stat.f_bavail * stat.f_frsize
        size = stat.f_blocks * stat.f_frsize
        after, after_percent = _stress.disk_space_after(free, sum(self.quotas()), size)
        self.space = dict(free_mb=free // _stress.MIB, free_after_mb=after // _stress.MIB,
                          free_after_percent=round(after_percent, 1))
        if after < params['min_free_mb'] * _stress.MIB:
            self.fail('refusing `total_mb` %s on %s: it would leave %d MiB free, under `min_free_mb` %s'
                      % (params['total_mb'], path, max(0, after) // _stress.MIB, params['min_free_mb']))
        if after_percent < params['min_free_percent']:
            self.fail('refusing `total_mb` %s on %s: it would leave %.1f %% free, under `min_free_percent` %s'
                      % (params['total_mb'], path, after_percent, params['min_free_percent']))

    def worker_modes(self):
        modes = []
        for mode in self.params['mode']:
            modes.extend([mode] * self.params['workers'])
        return modes

    def quotas(self):
        return _stress.disk_worker_quotas(self.params['total_mb'] * _stress.MIB, len(self.worker_modes()))

    def identity(self):
        return dict(path=self.params['path'], mode=list(self.params['mode']), workers=self.params['workers'],
                    total_mb=self.params['total_mb'])

    def plan(self):
        plan = self.identity()
        plan.update(self.space)
        return plan

    def inject(self, ctx):
        scratch = os.path.join(self.params['path'], 'magsasa-chaos-%s' % ctx.record['fault_id'])
        # Registered before it exists: removing a missing path is fine, a leaked one is not.
        ctx.on_revert(dict(type='remove', path=scratch))
        os.mkdir(scratch, 0o700)
        processes = []
        ctx.detail(scratch_dir=scratch, processes=processes)
        for index, (mode, quota) in enumerate(zip(self.worker_modes(), self.quotas())):
            data = os.path.join(scratch, '%s-%d.dat' % (mode, index))
            progress = os.path.join(scratch, '%s-%d.progress' % (mode, index))
            argv = _stress.python_worker_argv(ctx, 'disk', mode, data, quota, ctx.worker_deadline, progress)
            worker = _stress.start_worker(ctx, argv, 'disk-%s-%d' % (mode, index))
            worker.update(mode=mode, quota_bytes=quota, progress=progress)
            processes.append(worker)
            ctx.detail(scratch_dir=scratch, processes=processes)

    def measure(self, ctx):
        details = ctx.record['details']
        # The progress files and /proc entries of our own workers: nothing of the system under test is asked.
        time.sleep(min(1.2, max(0.0, ctx.remaining - 0.3)))
        effect = _stress.read_progress([p['progress'] for p in details['processes']])
        effect['scratch_bytes'] = _stress.tree_size(details['scratch_dir'])
        if _stress.HAS_PSUTIL:
            storage = 0
            for proc in details['processes']:
                try:
                    storage += _stress.psutil.Process(proc['pid']).io_counters().write_bytes
                except (_stress.psutil.Error, AttributeError):
                    pass
            effect['storage_write_bytes'] = storage
        return effect


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(
        path=dict(type='path'),
        mode=dict(type='list', elements='str', choices=list(_stress.DISK_MODES), default=['write']),
        workers=dict(type='int', default=1),
        total_mb=dict(type='int', default=256),
        min_free_mb=dict(type='int', default=1024),
        min_free_percent=dict(type='float', default=10.0),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=fault_required_if() + [('state', 'present', ('path',))],
        supports_check_mode=True,
    )
    run_fault_module(module, DiskFault)


if __name__ == '__main__':
    main()
