#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_process
short_description: Kill the processes of a service and see whether it comes back
version_added: 0.1.0
description:
  - Sends a signal (V(SIGKILL) by default) to processes selected by exactly one of O(pid),
    O(pidfile), O(name), O(cmdline_pattern), O(systemd_unit) or O(supervisor_program); all of
    them, or O(count) / O(percent) of them picked at random.
  - Refuses, before signalling anything, a selection that includes PID 1, the module's own
    process or any of its ancestors (the Ansible worker), or the guard of an active fault; a
    selector that matches nothing fails.
  - With O(wait_for_restart), watches for the service's new process and reports whether and how fast it
    came back. The wait is passive, so it does not change the recovery it measures. It reads C(/proc)
    (and a O(pidfile)) only, and never asks C(supervisorctl) or C(systemctl) while the service restarts
    (each such request wakes supervisord, which then respawns the program early). A O(supervisor_program)
    or O(systemd_unit) is back when the killed process's parent has a new child with the same command line.
  - The experiment's metrics come from its probe, not from this wait; with V(0) (the default) the module
    does not wait and leaves recovery to the probe.
  - A kill cannot be undone. The fault is recorded like every other fault (active for
    O(duration), then moved to the history with the pids killed), but it registers no revert
    step; O(state=absent) only ends the record early.
  - A stop signal (V(SIGSTOP), V(SIGTSTP), V(SIGTTIN), V(SIGTTOU)) freezes the processes instead;
    then the fault registers a V(SIGCONT) for each of them, so they resume at the end of
    O(duration), at an unrenewed lease's end or on O(state=absent).
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
attributes:
  check_mode:
    description: Returns the plan with the processes that match; signals nothing.
  idempotent:
    description: >-
      While an identical fault is recorded (for O(duration)), running it again signals nothing and renews its lease;
      use another O(fault_id) to kill again.
options:
  duration:
    description:
      - How long the kill stays recorded as an active fault (listed by M(magsasa.chaos.chaos_faults),
        attributed to the experiment's fault window), in seconds. The kill itself is instantaneous.
      - Raised to O(wait_for_restart) plus 5 seconds when shorter, so the record outlives the wait.
    type: float
    default: 5.0
  pid:
    description:
      - Kill this process. O(wait_for_restart) cannot be used with it (a pid has no successor).
    type: int
  pidfile:
    description:
      - Kill the process whose pid is in this file.
    type: path
  name:
    description:
      - Kill processes whose short name (as in C(ps -o comm)) or program file name is exactly this.
    type: str
  cmdline_pattern:
    description:
      - Kill processes whose command line, arguments joined by spaces, matches this Python regular expression.
    type: str
  systemd_unit:
    description:
      - Kill the main process of this systemd unit, or every process of its control group when it has no main process.
    type: str
  supervisor_program:
    description:
      - Kill the process supervisord runs for this program (as named by C(supervisorctl status)).
    type: str
  supervisor_config:
    description:
      - Configuration file C(supervisorctl) reads to reach supervisord (C(-c)).
    type: path
  supervisor_serverurl:
    description:
      - URL of supervisord for C(supervisorctl) (C(-s)), for example V(unix:///var/run/supervisor.sock).
    type: str
  supervisorctl_path:
    description:
      - The C(supervisorctl) program. Looked up in E(PATH) and next to the target's Python when not given.
    type: path
  signal:
    description:
      - The signal to send, by name (V(SIGKILL), V(TERM)) or number. Stop signals freeze the
        processes until the fault ends (see the notes above).
    type: str
    default: SIGKILL
  count:
    description:
      - Kill this many of the matching processes, picked at random (all of them when fewer match).
      - Mutually exclusive with O(percent). Without either, every matching process is killed.
    type: int
  percent:
    description:
      - Kill this percentage of the matching processes (at least one), picked at random.
    type: float
  wait_for_restart:
    description:
      - Seconds to wait, after the kill, for a process that was not there before (a restarted service),
        observed passively in C(/proc). V(0) does not wait.
    type: float
    default: 0
requirements:
  - A Linux target (C(/proc)).
  - C(systemctl) for O(systemd_unit); C(supervisorctl) for O(supervisor_program).
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Crash the API under supervisord and measure how fast it is back
  magsasa.chaos.chaos_process:
    supervisor_program: demo-api
    supervisor_config: /etc/supervisor/supervisord.conf
    wait_for_restart: 30
  register: chaos_crash

- name: Fail the experiment when the service did not come back
  ansible.builtin.assert:
    that: chaos_crash.effect.restarted

- name: Kill half of the gunicorn workers with SIGTERM
  magsasa.chaos.chaos_process:
    cmdline_pattern: 'gunicorn: worker'
    percent: 50
    signal: SIGTERM

- name: Kill the main process of a systemd service
  magsasa.chaos.chaos_process:
    systemd_unit: nginx.service
    wait_for_restart: 20
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
  sample: process-1a2b3c4d5e
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
kind:
  description: The fault kind, V(process).
  returned: success and O(state=present)
  type: str
plan:
  description: The selector, the signal and the matching processes (pid, name, command line).
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
  description: Epoch seconds when the record ends.
  returned: success and O(state=present)
  type: float
lease_expires_at:
  description: Epoch seconds when an unrenewed lease ends the record, or null.
  returned: success and O(state=present)
  type: float
renewed:
  description: Whether an identical recorded fault had its lease renewed instead of a new kill.
  returned: when an identical fault was already active
  type: bool
details:
  description: What was killed.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    killed:
      description: The processes signalled (pid, name, cmdline, starttime).
      type: list
      elements: dict
    killed_pids:
      description: Their pids.
      type: list
      elements: int
    signal:
      description: The signal number sent.
      type: int
    killed_at:
      description: Epoch seconds of the kill.
      type: float
effect:
  description: What happened after the kill.
  returned: success and O(state=present) and not check mode
  type: dict
  contains:
    exited_pids:
      description: The killed pids that were gone within a second.
      type: list
      elements: int
    stopped_pids:
      description: With a stop signal (instead of the other keys), the pids seen frozen.
      type: list
      elements: int
    restarted:
      description: Whether a new process was found for the selector within O(wait_for_restart); null when not waiting.
      type: bool
    restart_seconds:
      description: Seconds from the kill until the new process was seen.
      type: float
    restarted_at:
      description: Epoch seconds when the new process was seen.
      type: float
    new_pids:
      description: The pids the selector found after the restart.
      type: list
      elements: int
guard_pid:
  description: Pid of the detached guard process that ends the record.
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
  description: The fault ids whose records were ended.
  returned: O(state=absent)
  type: list
  elements: str
'''

import os
import re
import signal
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, FaultError, fault_argument_spec, fault_required_if, run_fault_module)
from ansible_collections.magsasa.chaos.plugins.module_utils import _process
from ansible_collections.magsasa.chaos.plugins.module_utils import _targeting

SELECTORS = ('pid', 'pidfile', 'name', 'cmdline_pattern', 'systemd_unit', 'supervisor_program')
STOP_SIGNALS = (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
# A parent's children files are cheap to read; a whole process table costs more CPU on the target.
RESTART_POLL_CHILDREN = 0.05
RESTART_POLL_TABLE = 0.2


class ProcessFault(Fault):
    kind = 'process'

    def __init__(self, module):
        super(ProcessFault, self).__init__(module)
        self.matched = []
        self.killed = []
        self.signal = None

    def selector(self):
        chosen = _targeting.given(self.params, SELECTORS)  # at most one: the spec excludes the others
        for field in SELECTORS:
            if field in chosen:
                return field, chosen[field]
        return None, None

    def validate(self):
        self.check_options()
        self.select()

    def check_options(self):
        params = self.params
        try:
            self.signal = _process.signal_number(params['signal'])
        except ValueError:
            self.fail('`signal` must be a signal name or number such as SIGKILL, TERM or 9, got %s' % params['signal'])
        problem = _targeting.count_percent_problem(params['count'], params['percent'])
        if problem:
            self.fail(problem)
        if params['wait_for_restart'] < 0:
            self.fail('`wait_for_restart` must be 0 or more seconds, got %s' % params['wait_for_restart'])
        if params['wait_for_restart'] and params['pid'] is not None:
            self.fail('`wait_for_restart` needs a selector that can find the restarted process '
                      '(pidfile, name, cmdline_pattern, systemd_unit, supervisor_program), not `pid` %s' % params['pid'])
        if params['cmdline_pattern'] is not None:
            try:
                re.compile(params['cmdline_pattern'])
            except re.error as exc:
                self.fail('`cmdline_pattern` is not a valid regular expression (%s), got %s'
                          % (exc, params['cmdline_pattern']))
        if self.signal in STOP_SIGNALS and params['wait_for_restart']:
            self.fail('`wait_for_restart` does not apply to the stop `signal` %s: the processes are frozen, '
                      'not restarted' % params['signal'])

    def effective_duration(self):
        """At least ``wait_for_restart`` plus 5 s, so the fault outlasts the wait for the restart."""
        params = self.params
        floor = params['wait_for_restart'] + 5
        if params['duration'] >= floor:
            return params['duration']
        if floor > params['max_duration']:
            self.fail('`wait_for_restart` %s needs a duration over max_duration %s; raise max_duration'
                      % (params['wait_for_restart'], params['max_duration']))
        return floor

    def select(self):
        """Find the processes now; refuse an empty selection or one holding a protected process."""
        field, value = self.selector()
        try:
            self.matched = self.resolve()
        except FaultError as exc:
            self.fail(str(exc))
        if not self.matched:
            self.fail('`%s` %s matches no running process' % (field, value))
        protected = _process.protected_pids(os.getpid())
        hit = [p for p in self.matched if p['pid'] in protected or _process.is_fault_guard(p)]
        if hit:
            self.fail('refusing `%s` %s: it selects %s, which must never be killed (PID 1, this module, the '
                      'Ansible processes running it or a fault guard); make the selector more specific'
                      % (field, value, ', '.join('%d (%s)' % (p['pid'], p['name']) for p in hit)))

    # -- selection -----------------------------------------------------------------
    def resolve(self):
        """The live processes the selector names now."""
        params = self.params
        if params['pid'] is not None:
            return self.by_pids([params['pid']])
        if params['pidfile'] is not None:
            return self.by_pidfile(params['pidfile'])
        if params['name'] is not None:
            return _process.match_name(_process.process_table(), params['name'])
        if params['cmdline_pattern'] is not None:
            return _process.match_cmdline(_process.process_table(), params['cmdline_pattern'])
        if params['systemd_unit'] is not None:
            return self.by_pids(self.systemd_pids(params['systemd_unit']))
        return self.by_pids(self.supervisor_pids(params['supervisor_program']))

    @staticmethod
    def by_pids(pids):
        found = [_process.read_process(pid) for pid in pids]
        return [p for p in found if p is not None and p['state'] not in ('Z', 'X')]

    def by_pidfile(self, path):
        try:
            with open(path, 'r') as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            raise FaultError('`pidfile` %s cannot be read: %s' % (path, exc.strerror))
        try:
            return self.by_pids([_process.parse_pidfile(text)])
        except ValueError:
            raise FaultError('`pidfile` %s does not hold a pid, got %r' % (path, text.strip()[:40]))

    def systemd_pids(self, unit):
        systemctl = self.module.get_bin_path('systemctl')
        if not systemctl:
            raise FaultError('`systemd_unit` %s: systemctl is not installed on this host' % unit)
        rc, out, err = self.module.run_command([systemctl, 'show', '-p', 'LoadState', '-p', 'MainPID',
                                                '-p', 'ControlGroup', unit])
        if rc != 0:
            raise FaultError('`systemd_unit` %s: systemctl show failed: %s' % (unit, (err or out).strip()))
        values = _process.parse_systemctl_show(out)
        if values.get('LoadState') == 'not-found':
            raise FaultError('`systemd_unit` %s is not a known unit' % unit)
        main_pid = int(values.get('MainPID') or 0)
        if main_pid > 0:
            return [main_pid]
        if values.get('ControlGroup'):
            return _process.read_cgroup_pids(values['ControlGroup'])
        return []

    def supervisor_pids(self, program):
        # Asked once, before the kill; the restart is then watched in /proc (see restart_finder).
        params = self.params
        supervisorctl = params['supervisorctl_path'] or self.module.get_bin_path(
            'supervisorctl', opt_dirs=[os.path.dirname(sys.executable)])
        if not supervisorctl:
            raise FaultError('`supervisor_program` %s: supervisorctl is not installed on this host; '
                             'set `supervisorctl_path`' % program)
        argv = [supervisorctl]
        if params['supervisor_config']:
            argv += ['-c', params['supervisor_config']]
        if params['supervisor_serverurl']:
            argv += ['-s', params['supervisor_serverurl']]
        rc, out, err = self.module.run_command(argv + ['pid', program])
        pid = _process.parse_supervisor_pid(out)
        if pid is None and 'no such process' in (out + err).lower():
            raise FaultError('`supervisor_program` %s is not a program supervisord knows' % program)
        if pid is None and rc not in (0, 1):
            raise FaultError('`supervisor_program` %s: supervisorctl failed (rc %d): %s'
                             % (program, rc, (err or out).strip()))
        return [pid] if pid else []

    # -- the fault -----------------------------------------------------------------
    def plan(self):
        field, value = self.selector()
        return dict(selector=field, value=value, signal=self.signal, count=self.params['count'],
                    percent=self.params['percent'], wait_for_restart=self.params['wait_for_restart'],
                    matched=[dict(pid=p['pid'], name=p['name'], cmdline=' '.join(p['cmdline'])[:200])
                             for p in self.matched])

    def inject(self, ctx):
        by_pid = dict((p['pid'], p) for p in self.matched)
        chosen = _targeting.pick(sorted(by_pid), self.params['count'], self.params['percent'])
        killed = []
        killed_at = time.time()
        for pid in chosen:
            proc = by_pid[pid]
            current = _process.read_process(pid)
            if current is None or current['starttime'] != proc['starttime']:
                continue  # exited (or the pid was reused) since it was selected
            try:
                os.kill(pid, self.signal)
            except OSError:
                continue
            killed.append(dict(pid=pid, name=proc['name'], cmdline=' '.join(proc['cmdline'])[:200],
                               starttime=proc['starttime']))
            self.killed.append(proc)
            if self.signal in STOP_SIGNALS:
                # SIGCONT to a pid that exited (or was reused) meanwhile is harmless.
                ctx.on_revert(dict(type='command', argv=['kill', '-s', 'CONT', str(pid)], ok_rcs=[0, 1]))
        if not killed:
            field, value = self.selector()
            raise FaultError('`%s` %s: every matching process exited before it could be signalled' % (field, value))
        ctx.detail(killed=killed, killed_pids=[k['pid'] for k in killed], signal=self.signal, killed_at=killed_at)

    def measure(self, ctx):
        details = ctx.record['details']
        if self.signal in STOP_SIGNALS:
            return dict(stopped_pids=sorted(k['pid'] for k in details['killed']
                                            if (_process.read_process(k['pid']) or {}).get('state') == 'T'))
        killed = dict((k['pid'], k['starttime']) for k in details['killed'])
        # Reading /proc sends the processes nothing and takes no lock they wait on: it cannot change
        # how they exit or restart.
        deadline = time.time() + 1.0
        while time.time() < deadline and any(_process.is_running(p, start) for p, start in killed.items()):
            time.sleep(0.05)
        effect = dict(exited_pids=sorted(p for p, start in killed.items() if not _process.is_running(p, start)),
                      restarted=None, restart_seconds=None, restarted_at=None, new_pids=[])
        wait = self.params['wait_for_restart']
        if not wait:
            return effect
        effect['restarted'] = False
        find, poll = self.restart_finder()
        deadline = details['killed_at'] + wait
        while time.time() < deadline:
            new = find()
            if new:
                seen = time.time()
                effect.update(restarted=True, restarted_at=seen,
                              restart_seconds=round(seen - details['killed_at'], 3),
                              new_pids=sorted(p['pid'] for p in new))
                break
            time.sleep(poll)
        return effect

    def restart_finder(self):
        """How to see the restarted service without asking anyone: ``(find, poll seconds)``.

        Asking the supervisor while it restarts the service disturbs what we measure: every
        ``supervisorctl pid`` wakes supervisord's main loop, which then respawns the program at once
        instead of at its next one-second tick, so the recovery we would report is several times
        faster than the service's real one. So the wait never talks to the supervisor (nor to
        systemd): a supervised service is back when its parent has a new child with the killed
        process's command line, read from ``/proc`` (the parent's ``children`` files, else the
        process table). The other selectors are re-read the same passive way (``/proc``, the pidfile).
        """
        before = set((p['pid'], p['starttime']) for p in self.matched)
        if self.selector()[0] not in ('supervisor_program', 'systemd_unit'):
            def find_selected():
                try:
                    found = self.resolve()
                except FaultError:
                    return []
                return [p for p in found if (p['pid'], p['starttime']) not in before]
            return find_selected, RESTART_POLL_TABLE
        parents = sorted(set(p['ppid'] for p in self.killed))

        def find_children():
            candidates = []
            for parent in parents:
                found = _process.children(parent)
                candidates.extend(found if found is not None else _process.process_table())
            return _process.successors(candidates, self.killed, before)
        return find_children, RESTART_POLL_CHILDREN


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(
        duration=dict(type='float', default=5.0),
        pid=dict(type='int'),
        pidfile=dict(type='path'),
        name=dict(type='str'),
        cmdline_pattern=dict(type='str'),
        systemd_unit=dict(type='str'),
        supervisor_program=dict(type='str'),
        supervisor_config=dict(type='path'),
        supervisor_serverurl=dict(type='str'),
        supervisorctl_path=dict(type='path'),
        signal=dict(type='str', default='SIGKILL'),
        count=dict(type='int'),
        percent=dict(type='float'),
        wait_for_restart=dict(type='float', default=0),
    )
    selector_required_if, selector_exclusive = _targeting.selector_rules(SELECTORS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=fault_required_if() + selector_required_if,
        mutually_exclusive=selector_exclusive,
        supports_check_mode=True,
    )
    run_fault_module(module, ProcessFault)


if __name__ == '__main__':
    main()
