#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_invoke
short_description: Run a module with a mapping of user options passed through exactly
version_added: 0.1.0
description:
  - Runs O(module) with the options in O(parameters) exactly as given (V(0), V(false) and empty
    strings included) plus the caller's own O(args).
  - Refuses, before the module runs, an option in O(parameters) that the module does not document
    (naming it and the module's options) and one that O(args) sets. The module's documentation is
    its argument spec (ansible-test sanity holds them equal), so there is one list of options.
  - The chaos_experiment role hands a scenario's C(parameters) to its fault module this way.
author:
  - magsasa.chaos maintainers (@magsasa)
attributes:
  check_mode:
    support: full
    description: The module runs in check mode when the task does, and reports its plan.
  diff_mode:
    support: none
    description: Whatever O(module) reports.
  idempotent:
    support: full
    description: As idempotent as O(module).
  action:
    support: full
    description: Runs as an action plugin on the controller, which runs O(module) on the target.
options:
  module:
    description:
      - The module to run, by its fully qualified name, such as V(magsasa.chaos.chaos_cpu).
    type: str
    required: true
  args:
    description:
      - Options the caller sets itself (an experiment's lifecycle, such as C(state), C(duration) and C(fault_id)).
        O(parameters) cannot set these.
    type: dict
    default: {}
  parameters:
    description:
      - The user's options for O(module), passed through unchanged.
    type: raw
    default: {}
  parameters_name:
    description:
      - What to call O(parameters) in error messages, such as V(scenario 'Light CPU Stress' parameters).
    type: str
    default: parameters
seealso:
  - module: magsasa.chaos.chaos_cpu
'''

EXAMPLES = r'''
- name: CPU stress with options from a scenario catalog
  magsasa.chaos.chaos_invoke:
    module: magsasa.chaos.chaos_cpu
    args:
      state: present
      duration: 30
    parameters: {workers: 2, load_percent: 80}
'''

RETURN = r'''
msg:
  description: Why the options were refused, or what O(module) said.
  returned: failure
  type: str
'''
