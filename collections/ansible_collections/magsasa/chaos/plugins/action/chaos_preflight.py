# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A chaos run's read-only visit to one target, in one task: what its faults need, which faults it
already carries, and each fault's options checked by the fault's own module in check mode.

A run used to ask these as three tasks over every target. Each task costs a worker process on the
controller and a connection per host, and at 20 hosts on a small controller every such fan-out
step costs seconds, so the three questions go out as one step, and the active faults ride on the
capability probe's own module run instead of a module run of their own.
"""

from ansible.plugins.action import ActionBase
from ansible_collections.magsasa.chaos.plugins.plugin_utils._module_options import module_call
from ansible_collections.magsasa.chaos.plugins.plugin_utils._preflight import capability_gaps

CAPABILITIES = 'magsasa.chaos.chaos_capabilities'
NEED_SECTIONS = ('tools', 'python_modules', 'qdiscs', 'systemd_units')


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(('needs', 'checks', 'lease', 'state_dir', 'active_faults'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=dict(
            needs=dict(type='dict', default={}),
            checks=dict(type='list', elements='dict', default=[]),
            lease=dict(type='float'),
            state_dir=dict(type='str'),
            active_faults=dict(type='bool', default=True),
        ))
        probe = dict((section, list(args['needs'].get(section) or [])) for section in NEED_SECTIONS)
        found = dict((section, {}) for section in NEED_SECTIONS)
        # Nothing to probe for: the fault modules' check-mode runs list the active faults themselves,
        # so the capability probe's module run is saved.
        if any(probe.values()) or not args['checks']:
            found = self.capabilities(probe, args, task_vars)
            if found.get('failed'):
                result.update(failed=True, msg='%s failed: %s' % (CAPABILITIES, found.get('msg') or 'no message'))
                return result
        for key in NEED_SECTIONS + ('faults',):
            if key in found:
                result[key] = found[key]
        result['checks'] = [self.check(check, found, args, task_vars) for check in args['checks']]
        if args['active_faults'] and 'faults' not in result:
            # Every check was refused before it listed anything (the run stops on that anyway), or an
            # identical fault is active (renewal answers instead): no answer, so the lock asks itself.
            listed = [verdict['active_faults'] for verdict in result['checks'] if 'active_faults' in verdict]
            if listed:
                result['faults'] = listed[0]
        return result

    def capabilities(self, probe, args, task_vars):
        module_args = dict(probe, active_faults=args['active_faults'])
        if args['state_dir']:
            module_args['state_dir'] = args['state_dir']
        return self.run_module(CAPABILITIES, module_args, task_vars, check_mode=False)

    def check(self, check, found, args, task_vars):
        """The fault module's verdict on the scenario's options, in check mode; a target without
        what the fault needs is not asked (the run skips the scenario with the gaps as reason)."""
        gaps = capability_gaps(check.get('needs') or [], found)
        if gaps:
            return dict(skipped=True, gaps=gaps)
        fixed = dict(state='present', fault_id='preflight-check', duration=check['duration'])
        if args['lease'] is not None:
            fixed['lease'] = args['lease']
        if args['state_dir']:
            fixed['state_dir'] = args['state_dir']
        module_args, problem = module_call(check['module'], fixed, check.get('parameters'),
                                           "scenario '%s' parameters" % check.get('scenario'))
        if problem:
            return dict(failed=True, msg=problem)
        verdict = self.run_module(check['module'], module_args, task_vars, check_mode=True)
        return dict((key, verdict[key]) for key in ('failed', 'msg', 'changed', 'plan', 'active_faults') if key in verdict)

    def run_module(self, name, module_args, task_vars, check_mode):
        # The task's check mode is what ActionBase hands the module; the fault checks always run in
        # check mode, the probe never needs to.
        saved = self._task.check_mode
        self._task.check_mode = check_mode
        try:
            return self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
        finally:
            self._task.check_mode = saved
