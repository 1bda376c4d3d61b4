#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_pushgateway
short_description: Push a chaos run's metrics to the Pushgateway from a task when the push is required
version_added: 0.1.0
description:
  - When the C(magsasa.chaos.chaos_report) callback's C(pushgateway_url) and C(pushgateway_required) are set
    (E(CHAOS_PUSHGATEWAY_URL), E(CHAOS_PUSHGATEWAY_REQUIRED) or C([callback_chaos_report]) in C(ansible.cfg)),
    pushes the metrics of O(records) to the Pushgateway with the callback's other C(pushgateway_*) settings,
    and fails, naming the Pushgateway's URL, when the push fails. Otherwise it is skipped and the callback
    pushes at the end of the run as usual.
  - After a push by this task the callback does not push again, and its Prometheus textfile gets the
    same run start (the earliest baseline start of O(records)) and end (the time of this push).
  - The C(chaos_suite) role's verdict runs it once, on the controller, before it judges the run.
  - Under C(--check) nothing is pushed.
author:
  - magsasa.chaos maintainers (@magsasa)
attributes:
  check_mode:
    support: full
    description: Skipped in check mode, so a dry run does not replace the last real run's metrics.
  diff_mode:
    support: none
    description: Nothing to compare.
  idempotent:
    support: none
    description: Every run pushes the metrics again (an HTTP PUT that replaces the group).
  action:
    support: full
    description: Runs as an action plugin on the controller only.
options:
  records:
    description:
      - The run's experiment records, as the C(chaos_experiment) role keeps them (C(chaos_experiment_records)).
    type: list
    elements: raw
    required: true
seealso:
  - plugin: magsasa.chaos.chaos_report
    plugin_type: callback
'''

EXAMPLES = r'''
- name: Push the run's metrics when the chaos_report callback's pushgateway_required is set
  run_once: true
  delegate_to: localhost
  magsasa.chaos.chaos_pushgateway:
    records: "{{ chaos_experiment_records | default([]) }}"
'''

RETURN = r'''
msg:
  description: What was pushed where, why nothing was pushed, or why the push failed (naming the URL).
  returned: always
  type: str
chaos_pushgateway:
  description: The push, for the chaos_report callback.
  returned: when a push was tried
  type: dict
  contains:
    url:
      description: The Pushgateway's URL, without credentials.
      type: str
    pushed:
      description: Whether the push succeeded.
      type: bool
    started:
      description: The run start the metrics carry (Unix time).
      type: float
    ended:
      description: The run end the metrics carry (Unix time).
      type: float
    message:
      description: What the push said (the callback prints it after a successful push).
      type: str
'''
