#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_container
short_description: Crash, kill, stop, pause or restart Docker or Podman containers
version_added: 0.1.0
description:
  - Selects running containers by name, id, labels or Compose service, picks all of them or a random
    O(count) or O(percent) of them (Chaos Monkey style), and applies O(action) to each.
  - V(crash) sends C(SIGKILL) to the container's main process from the host, so the container's restart
    policy acts the way it does for a real crash (C(docker kill) is a manual stop, which restart policies ignore).
  - V(stop) and V(pause) last for O(duration); the guard starts or unpauses the containers again at the
    deadline, or when an unrenewed O(lease) ends, even if the controller is gone.
  - For V(crash), V(kill) and V(restart) the module waits up to O(wait_for_recovery) seconds and reports,
    per container, the C(RestartCount) before and after and the seconds until it was running (and healthy,
    when it has a healthcheck) again. It waits by listening to the runtime's own events for the container
    (C(start), C(health_status)), not by polling it, so the wait does not change the restart it measures.
  - At the end of O(duration) the guard starts any of them that is still not running, so no fault outlives its deadline.
  - Talks to the daemon with the Docker SDK for Python; Podman through its Docker-compatible API socket.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
  - magsasa.chaos.docker
attributes:
  check_mode:
    description: Returns the plan with the containers that would be hit; touches nothing.
  diff_mode:
    description: Nothing to diff; the plan and the recovery observed are returned instead.
  idempotent:
    support: partial
    description: While an identical fault is active, running the module again only renews its lease.
      Once it has ended, running it again injects a new fault.
options:
  name:
    description:
      - Exact name of the container to hit.
      - One of O(name), O(id), O(labels) or O(compose_service) is required with O(state=present).
    type: str
  id:
    description:
      - Id of the container to hit, full or a unique prefix.
    type: str
  labels:
    description:
      - Hit the running containers that carry all of these labels with these values.
    type: dict
  compose_service:
    description:
      - Hit the running containers of this Docker Compose service (label C(com.docker.compose.service)).
    type: str
  compose_project:
    description:
      - Limit O(compose_service) to this Compose project (label C(com.docker.compose.project)).
        Requires O(compose_service).
    type: str
  count:
    description:
      - Hit this many of the matching containers, picked at random. More than match hits all of them.
      - Without O(count) and O(percent) every matching container is hit.
    type: int
  percent:
    description:
      - Hit this percentage (more than 0, at most 100) of the matching containers, picked at random,
        rounded up, at least one.
    type: float
  action:
    description:
      - V(crash) kills the main process with C(SIGKILL) from the host; the restart policy decides what follows.
        The module must run on the container's host for this.
      - V(kill) sends O(signal) through the Docker API (a manual stop; restart policies do not act on it).
      - V(stop) stops the container (C(SIGTERM), then C(SIGKILL) after O(stop_timeout)); started again at the deadline.
      - V(pause) freezes every process of the container; unpaused at the deadline.
      - V(restart) restarts the container through the Docker API.
    type: str
    choices: [crash, kill, stop, pause, restart]
    default: crash
  signal:
    description:
      - The signal of O(action=kill), by name (V(SIGTERM), V(SIGHUP), ...).
    type: str
    default: SIGKILL
  stop_timeout:
    description:
      - Seconds O(action=stop) and O(action=restart) give the container to exit before it is killed.
    type: int
    default: 10
  wait_for_recovery:
    description:
      - Seconds to wait, after V(crash), V(kill) or V(restart), for each container to run again (and be healthy,
        when it has a healthcheck). V(0) returns at once without measuring the recovery.
    type: float
    default: 30.0
notes:
  - Only running containers are selected. A selector that matches none fails before anything is done.
  - While a V(crash), V(kill) or V(restart) fault is active, an identical request renews it rather than hitting the
    containers again; use a short O(duration) (or O(state=absent)) to hit them repeatedly.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Crash the API container; its restart policy must bring it back within 30 s
  magsasa.chaos.chaos_container:
    name: demo-api
    action: crash
    duration: 60
    wait_for_recovery: 30
  register: chaos_crash

- name: Stop one random web replica of the compose project for 20 seconds
  magsasa.chaos.chaos_container:
    compose_service: web
    compose_project: shop
    count: 1
    action: stop
    duration: 20

- name: Freeze half of the workers for 10 seconds (Podman)
  magsasa.chaos.chaos_container:
    labels:
      app: worker
    percent: 50
    action: pause
    duration: 10
    docker_host: unix:///run/podman/podman.sock

- name: Unpause / start them early
  magsasa.chaos.chaos_container:
    state: absent
    fault_id: "{{ chaos_crash.fault_id }}"
'''

RETURN = r'''
ended:
  description:
    - When O(fault_id) names a fault that is already over, how it ended - C(fault_id), C(reverted_by)
      (V(guard:deadline), V(guard:lease-expired), ...), C(reverted_at) and C(final_effect).
  returned: when O(state=absent) and the fault had already ended
  type: dict
fault_id:
  description: The id of the fault (give it to O(state=absent) to end the fault early).
  returned: success
  type: str
  sample: container-3f2a9c01de
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
guard_pid:
  description: Pid of the detached guard process that reverts the fault.
  returned: success and O(state=present) and not check mode
  type: int
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
kind:
  description: The fault kind, V(container).
  returned: success and O(state=present)
  type: str
lease_expires_at:
  description: Epoch seconds when an unrenewed lease ends the fault, or null.
  returned: success and O(state=present)
  type: float
plan:
  description: What the fault does, with the selector, the matching and the picked containers.
  returned: success
  type: dict
expires_at:
  description: Epoch seconds when the guard ends the fault at the latest.
  returned: success with O(state=present)
  type: float
details:
  description: What was done, recorded the moment it was done.
  returned: success with O(state=present)
  type: dict
  contains:
    containers:
      description: One entry per container hit, with C(id), C(name), C(action), C(restart_count_before) and C(injected_at).
      type: list
      elements: dict
effect:
  description: The recovery observed after V(crash), V(kill) and V(restart).
  returned: success with O(state=present)
  type: dict
  contains:
    containers:
      description: >-
        Per container C(id), C(name), C(action), C(restart_count_before), C(restart_count_after), C(recovered)
        (running and healthy again within O(wait_for_recovery)), C(recovery_seconds) (null when not recovered
        or not waited for), C(healthcheck) (whether it has one) and C(status).
      type: list
      elements: dict
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
record:
  description: Path of the fault's JSON record.
  returned: success and O(state=present) and not check mode
  type: str
renewed:
  description: Whether an identical active fault had its lease renewed instead of a new injection.
  returned: when an identical fault was already active
  type: bool
reverted:
  description: The fault ids reverted by O(state=absent).
  returned: success with O(state=absent)
  type: list
  elements: str
started_at:
  description: Epoch seconds when the fault started.
  returned: success and O(state=present)
  type: float
state_dir:
  description: The fault state directory.
  returned: always
  type: str
'''

import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._containers import (
    DockerException, container_state, docker_argument_spec, docker_client, docker_required_together,
    health_status, is_up, pid_belongs_to, revert_action, watch_recovery)
from ansible_collections.magsasa.chaos.plugins.module_utils import _targeting
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, FaultError, fault_argument_spec, fault_required_if, run_fault_module)

SELECTORS = ('name', 'id', 'labels', 'compose_service')
COMPOSE_SERVICE_LABEL = 'com.docker.compose.service'
COMPOSE_PROJECT_LABEL = 'com.docker.compose.project'
RESTORED_BY_GUARD = {'stop': 'start', 'pause': 'unpause'}


def label_filters(labels=None, compose_service=None, compose_project=None):
    """The Docker API ``label`` filter list for the selector."""
    wanted = dict(labels or {})
    if compose_service:
        wanted[COMPOSE_SERVICE_LABEL] = compose_service
    if compose_project:
        wanted[COMPOSE_PROJECT_LABEL] = compose_project
    return ['%s=%s' % (key, value) for key, value in sorted(wanted.items())]


def matches(summary, name=None, container_id=None):
    """Whether a ``docker ps`` entry is the container named or identified exactly."""
    if name is not None and '/' + name not in (summary.get('Names') or []):
        return False
    if container_id is not None and not summary.get('Id', '').startswith(container_id):
        return False
    return True


def signal_valid(name):
    name = str(name).upper()
    if not name.startswith('SIG'):
        name = 'SIG' + name
    return isinstance(getattr(signal, name, None), signal.Signals)


class ContainerFault(Fault):
    kind = 'container'

    def __init__(self, module):
        super(ContainerFault, self).__init__(module)
        self._client = None
        self._targets = None
        self._matched = None

    def outlives_reboot(self):
        # A stopped, killed or crashed container without a restart policy stays down after a reboot
        # (a paused one comes back stopped); a restart leaves nothing to undo.
        return self.params['action'] != 'restart'

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client(self.module)
        return self._client

    def validate(self):
        params = self.params
        problem = _targeting.count_percent_problem(params['count'], params['percent'])
        if problem:
            self.fail(problem)
        if params['wait_for_recovery'] < 0:
            self.fail('`wait_for_recovery` must be 0 or more seconds, got %s' % params['wait_for_recovery'])
        if params['stop_timeout'] < 0:
            self.fail('`stop_timeout` must be 0 or more seconds, got %s' % params['stop_timeout'])
        if params['action'] == 'kill' and not signal_valid(params['signal']):
            self.fail('`signal` must be a signal name such as SIGTERM or SIGKILL, got %r' % params['signal'])
        if params['labels'] is not None and not params['labels']:
            self.fail('`labels` must name at least one label, got an empty dict')
        if params['state'] == 'present':
            self.client  # pylint: disable=pointless-statement

    def selector(self):
        return _targeting.given(self.params, SELECTORS + ('compose_project',))

    def targets(self):
        """The containers to hit, chosen once per run (the random pick is part of the plan)."""
        if self._targets is not None:
            return self._targets
        params = self.params
        filters = {'status': 'running'}
        labels = label_filters(params['labels'], params['compose_service'], params['compose_project'])
        if labels:
            filters['label'] = labels
        try:
            running = self.client.api.containers(filters=filters)
        except DockerException as exc:
            self.fail('listing containers at docker_host=%s failed: %s' % (params['docker_host'], exc))
        matched = [c for c in running if matches(c, params['name'], params['id'])]
        if not matched:
            self.fail('no running container matches %s at docker_host=%s; check the selector '
                      '(only running containers are selected)' % (self.describe_selector(), params['docker_host']))
        self._matched = [self.summary(c) for c in matched]
        self._targets = [self.summary(c) for c in _targeting.pick(matched, params['count'], params['percent'])]
        return self._targets

    def describe_selector(self):
        return ', '.join('%s=%s' % (key, value) for key, value in sorted(self.selector().items()))

    @staticmethod
    def summary(entry):
        names = entry.get('Names') or ['/?']
        return dict(id=entry['Id'], name=names[0].lstrip('/'))

    def plan(self):
        targets = self.targets()
        plan = dict(action=self.params['action'], selector=self.selector(),
                    matched=[c['name'] for c in self._matched], targets=targets)
        if self.params['action'] == 'kill':
            plan['signal'] = self.params['signal']
        if self.params['action'] in RESTORED_BY_GUARD:
            plan['restored_by_guard'] = RESTORED_BY_GUARD[self.params['action']]
        return plan

    def inject(self, ctx):
        params = self.params
        action = params['action']
        done = []
        for target in self.targets():
            info = container_state(self.client, target['id'])
            if info is None:
                raise FaultError('container %s (%s) disappeared before it could be hit' % (target['name'], target['id'][:12]))
            state = info.get('State') or {}
            entry = dict(id=target['id'], name=target['name'], action=action,
                         restart_count_before=info.get('RestartCount', 0),
                         started_at_before=state.get('StartedAt'), pid_before=state.get('Pid'),
                         healthcheck=health_status(info) is not None)
            # The undo goes in first: starting a running container or unpausing one that is not paused is
            # harmless, and a module that dies right after the hit still leaves a fault the guard can end.
            # A container Docker removes when it stops (--rm) cannot be started again: nothing to register.
            entry['auto_remove'] = bool((info.get('HostConfig') or {}).get('AutoRemove'))
            if action in RESTORED_BY_GUARD or not entry['auto_remove']:
                ctx.on_revert(revert_action(params, RESTORED_BY_GUARD.get(action, 'start'), target['id'],
                                            ctx.install_program))
            entry['injected_at'] = time.time()
            self.hit(action, target, state)
            done.append(entry)
            ctx.detail(containers=done)

    def hit(self, action, target, state):
        api = self.client.api
        try:
            if action == 'crash':
                pid = state.get('Pid') or 0
                if not pid or not pid_belongs_to(pid, target['id']):
                    raise FaultError('action=crash must run on the host of container %s: its main process (pid %s) '
                                     'is not visible here. Run the task on the container host, or use action=kill.'
                                     % (target['name'], pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError as exc:
                    raise FaultError('action=crash could not SIGKILL the main process (pid %d) of container %s: %s; '
                                     'it needs root on the container host' % (pid, target['name'], exc))
            elif action == 'kill':
                api.kill(target['id'], signal=self.params['signal'].upper())
            elif action == 'stop':
                api.stop(target['id'], timeout=self.params['stop_timeout'])
            elif action == 'pause':
                api.pause(target['id'])
            else:
                api.restart(target['id'], timeout=self.params['stop_timeout'])
        except DockerException as exc:
            raise FaultError('%s of container %s failed: %s' % (action, target['name'], exc))

    def measure(self, ctx):
        action = self.params['action']
        entries = ctx.record['details'].get('containers', [])
        results = []
        waiting = action not in RESTORED_BY_GUARD and self.params['wait_for_recovery'] > 0
        deadline = time.time() + self.params['wait_for_recovery']
        for entry in entries:
            result = dict((k, entry[k]) for k in ('id', 'name', 'action', 'restart_count_before', 'healthcheck'))
            recovered_at = self.wait_recovered(entry, deadline) if waiting else None
            info = container_state(self.client, entry['id']) or {}
            result.update(restart_count_after=info.get('RestartCount'),
                          status=(info.get('State') or {}).get('Status', 'removed'),
                          recovered=recovered_at is not None,
                          recovery_seconds=None if recovered_at is None else round(recovered_at - entry['injected_at'], 3))
            results.append(result)
        return dict(containers=results, waited=waiting)

    def wait_recovered(self, entry, deadline):
        """When the container was up again after the hit, watched passively in the runtime's events
        (see ``watch_recovery``): restarted, or, after V(kill) with a signal it survives, still
        running its original main process a second later. None if not by ``deadline``."""
        healthcheck = entry['healthcheck']
        if self.params['action'] == 'kill':
            recovered_at, died = watch_recovery(self.client, entry['id'], entry['injected_at'],
                                                min(deadline, entry['injected_at'] + 1.0), healthcheck)
            if recovered_at is not None:
                return recovered_at
            if not died:
                # One inspect, a second after the signal: did it survive?
                info = container_state(self.client, entry['id'])
                if is_up(info) and info['State'].get('Pid') == entry['pid_before']:
                    return entry['injected_at']
        return watch_recovery(self.client, entry['id'], entry['injected_at'], deadline, healthcheck)[0]


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(docker_argument_spec())
    argument_spec.update(
        name=dict(type='str'),
        id=dict(type='str'),
        labels=dict(type='dict'),
        compose_service=dict(type='str'),
        compose_project=dict(type='str'),
        count=dict(type='int'),
        percent=dict(type='float'),
        action=dict(type='str', default='crash', choices=['crash', 'kill', 'stop', 'pause', 'restart']),
        signal=dict(type='str', default='SIGKILL'),
        stop_timeout=dict(type='int', default=10),
        wait_for_recovery=dict(type='float', default=30.0),
    )
    selector_required_if, selector_exclusive = _targeting.selector_rules(SELECTORS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=fault_required_if() + selector_required_if,
        mutually_exclusive=selector_exclusive,
        required_by={'compose_project': 'compose_service'},
        required_together=docker_required_together(),
        supports_check_mode=True,
    )
    run_fault_module(module, ContainerFault)


if __name__ == '__main__':
    main()
