#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_preflight
short_description: Ask a target, read-only and in one task, whether a chaos run can start on it
version_added: 0.1.0
description:
  - Runs M(magsasa.chaos.chaos_capabilities) on the target to find what the run's faults need and,
    with O(active_faults), the faults the target already carries; then, for each entry of O(checks) whose needs
    the target meets, the fault's own module in check mode with the scenario's options, exactly as the
    experiment will inject them.
  - When there is nothing to probe for (O(needs) empty) the capability probe does not run. A fault module in check
    mode lists the active faults itself, so the visit is one module run per check.
  - One task instead of three per target. The chaos_suite role runs it over every target of the run at once
    before the first experiment, and its answer about active faults is the first experiment's lock.
  - A fault module that refuses its options does not fail the task; its verdict is in RV(checks), so the run
    can report every refusal at once.
author:
  - magsasa.chaos maintainers (@magsasa)
attributes:
  check_mode:
    support: full
    description: Changes nothing in any mode; the fault modules always run in check mode.
  diff_mode:
    support: none
    description: Reports no diff.
  idempotent:
    support: full
    description: Read-only.
  action:
    support: full
    description: Runs as an action plugin on the controller, which runs the modules on the target.
options:
  needs:
    description:
      - What to probe for, as the options of M(magsasa.chaos.chaos_capabilities) (C(tools), C(python_modules),
        C(qdiscs), C(systemd_units)).
    type: dict
    default: {}
  checks:
    description:
      - The faults to check on this target, each with C(scenario) (its name), C(module) (the fault module's
        fully qualified name), C(duration), C(parameters) (the options, passed through exactly) and C(needs)
        (what it needs, as the run's preflight plan lists them).
    type: list
    elements: dict
    default: []
  lease:
    description:
      - The lease the experiment will give each fault, checked with it.
    type: float
  state_dir:
    description:
      - The fault state directory, for the active faults and the checks.
    type: str
  active_faults:
    description:
      - Also list the faults active on the target.
    type: bool
    default: true
seealso:
  - module: magsasa.chaos.chaos_capabilities
  - module: magsasa.chaos.chaos_invoke
'''

EXAMPLES = r'''
- name: Can this host run a CPU stress with these options, and is it free?
  magsasa.chaos.chaos_preflight:
    needs: {tools: [], python_modules: [], qdiscs: [], systemd_units: []}
    checks:
      - scenario: Light CPU Stress
        module: magsasa.chaos.chaos_cpu
        duration: 30
        parameters: {workers: 1, load_percent: 50}
        needs: []
  register: chaos_preflight
'''

RETURN = r'''
tools:
  description: As returned by M(magsasa.chaos.chaos_capabilities).
  returned: success
  type: dict
python_modules:
  description: As returned by M(magsasa.chaos.chaos_capabilities).
  returned: success
  type: dict
qdiscs:
  description: As returned by M(magsasa.chaos.chaos_capabilities).
  returned: success
  type: dict
systemd_units:
  description: As returned by M(magsasa.chaos.chaos_capabilities).
  returned: success
  type: dict
faults:
  description:
    - The active faults, as returned by M(magsasa.chaos.chaos_capabilities) or by the first fault module's check mode.
  returned: when O(active_faults=true) and the target answered it (not when every check was refused)
  type: list
  elements: dict
checks:
  description:
    - One verdict per entry of O(checks), in order - C(skipped) with C(gaps) when the target lacks what the
      fault needs, else C(failed) and C(msg) when the module refused its options, or C(changed) and C(plan).
  returned: success
  type: list
  elements: dict
msg:
  description: Why the capability probe failed.
  returned: failure
  type: str
'''
