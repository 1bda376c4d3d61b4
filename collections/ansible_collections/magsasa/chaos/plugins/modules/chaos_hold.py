#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# This is a documentation stub: the work is done by the action plugin of the same name.


DOCUMENTATION = r'''
---
module: chaos_hold
short_description: Hold a fault on a host, renewing its lease over the host's connection
version_added: 0.1.0
description:
  - Runs on the controller, for each target host at the same time (Ansible's forks), and keeps one fault alive on
    that host until its deadline. Every O(tick) it runs one shell line over the host's existing connection that
    prints the host's clock and rewrites the fault's lease file; the fault's guard reads that file.
    No Python is started on the target for a renewal.
  - Over the C(ansible.builtin.local) and C(community.docker.docker) connections (without become) one shell is started on
    the target for the whole hold and renews once for each line the holder sends it every O(tick), a pipe write per
    tick instead of a process start (a C(docker exec)) per host per tick. The shell renews nothing by itself, so a
    holder or controller that dies (the pipe closes) or a link that is lost (no line arrives) lets the lease lapse
    exactly as before. Over other connections every tick runs the shell line as one command.
  - Ends early when O(stop_file) appears (written by another host's holder or by the controller), when the probe's
    O(samples_file) breaches O(stop_conditions), or when the fault is gone (lease lapsed, reverted by the guard or from
    outside). An ending other than the deadline writes O(stop_file) so the holders of the other hosts stop too.
  - When the controller dies (even by SIGKILL of its process group, which Ansible's detached workers are not part of),
    the holder notices within one O(tick) that its parent is gone and stops renewing; the guard reverts the fault one
    lease after the last renewal.
author:
  - magsasa.chaos maintainers (@magsasa)
attributes:
  check_mode:
    support: none
    description: The experiment roles skip the hold in check mode; nothing is injected to hold.
  diff_mode:
    support: none
    description: Nothing changes on the host but a lease file's modification time.
  idempotent:
    support: full
    description: Only renews; never injects or reverts.
options:
  fault_id:
    description: The fault to hold. Without it the task only waits (and reads the host's clock).
    type: str
  state_dir:
    description: The fault state directory on the host (RV(magsasa.chaos.chaos_cpu#module:state_dir) of the injection).
    type: str
  lease:
    description:
      - Seconds each renewal promises; the guard reverts the fault this long after the last renewal. It replaces
        the (longer) lease the fault was injected with from the first renewal on.
    type: float
    default: 3.0
  expires_at:
    description:
      - The fault's deadline in the host's clock. The hold ends when the guard has reverted the fault there (seen by
        the next renewal), or, failing that, O(tick) + 1 second after it (converted with the measured clock offset).
    type: float
  until:
    description:
      - Epoch seconds in the controller's clock when the hold ends, for holds without O(expires_at) (an instant
        fault observed for its window, or only waiting).
    type: float
  tick:
    description: Seconds between renewals; keep it well below the fault's lease.
    type: float
    default: 1.0
  slice:
    description:
      - Return after this many seconds even before the deadline, with RV(ended=slice). Used when there are fewer
        forks than targets, so every host's lease is renewed by a round of short holds.
    type: float
  stop_file:
    description:
      - A file on the controller whose appearance ends the hold; holders that end abnormally write it (creating its
        directory when missing). C(~) is expanded.
    type: str
  samples_file:
    description: The background probe's samples (JSON lines) on the controller, for O(stop_conditions).
    type: str
  stop_conditions:
    description: Abort thresholds, as in P(magsasa.chaos.resilience_probe#module) O(stop_conditions).
    type: dict
  fault_start:
    description: Epoch seconds (controller) from which O(stop_conditions) are evaluated.
    type: float
  expect_fault:
    description: Whether the fault must stay active for the hold. V(false) for instant faults (a crash) that end at once.
    type: bool
    default: true
  prometheus:
    description:
      - PromQL stop conditions evaluated every tick, as in M(magsasa.chaos.prometheus_query) with
        O(magsasa.chaos.prometheus_query#module:purpose=stop_condition); one that holds ends the hold.
      - A query that fails during the hold is kept in RV(prometheus_samples) with its error and does not end it.
    type: dict
    suboptions:
      url:
        description: Base URL of the Prometheus HTTP API.
        type: str
        required: true
      checks:
        description: The checks (C(name), C(query), C(op), C(threshold)).
        type: list
        elements: dict
        required: true
      headers:
        description: Extra HTTP headers, for example C(Authorization).
        type: dict
      timeout:
        description: Seconds to wait for each query.
        type: float
        default: 5
      validate_certs:
        description: Verify the server's TLS certificate.
        type: bool
        default: true
notes:
  - The renewal needs C(sh), C(date) and C(printf) on the host (any POSIX system); no Python.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: Hold the experiment's fault on every target at once
  magsasa.chaos.chaos_hold:
    fault_id: "{{ chaos_experiment_id }}"
    state_dir: "{{ chaos_experiment_inject.state_dir }}"
    expires_at: "{{ chaos_experiment_inject.expires_at }}"
    tick: 1
    stop_file: /tmp/experiment.stop
  register: chaos_hold_result
'''

RETURN = r'''
ended:
  description:
    - How the hold ended on this host - V(deadline), V(slice), V(stopped) (the stop file appeared),
      V(stop-condition), V(lease-lapsed), V(guard), V(reverted-outside), V(controller-gone), V(error), or
      V(unreachable) (the connection to the host failed; renewals stop and the host's guard reverts the fault
      when its lease lapses).
  returned: always
  type: str
reason:
  description: Why it ended, when it was not the deadline.
  returned: always
  type: str
clock_offset:
  description: The host's clock minus the controller's, in seconds (null when the host's C(date) lacks C(%N)).
  returned: always
  type: float
renewals:
  description: Lease renewals made.
  returned: always
  type: int
held_from:
  description: Controller epoch seconds the hold began.
  returned: always
  type: float
held_until:
  description: Controller epoch seconds the hold ended.
  returned: always
  type: float
history:
  description: When the fault was gone, its history entry (injected_at, reverted_at, reverted_by, revert_ok).
  returned: always
  type: dict
prometheus_samples:
  description: One sample per PromQL check and tick (C(at), C(name), C(value), C(holds), C(purpose)), or C(error).
  returned: always
  type: list
  elements: dict
'''
