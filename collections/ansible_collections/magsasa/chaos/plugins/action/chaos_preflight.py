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

from concurrent.futures import ThreadPoolExecutor

from ansible.plugins.action import ActionBase
from ansible_collections.magsasa.chaos.plugins.plugin_utils._module_options import module_call
from ansible_collections.magsasa.chaos.plugins.plugin_utils._preflight import capability_gaps

CAPABILITIES = 'magsasa.chaos.chaos_capabilities'
NEED_SECTIONS = ('tools', 'python_modules', 'qdiscs', 'systemd_units')
# fault checks of one target run side by side, at most this many at once
PARALLEL_CHECKS = 4


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
        result['checks'] = self.checks(args['checks'], found, args, task_vars, settled=bool(any(probe.values())))
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

    def checks(self, checks, found, args, task_vars, settled):
        """Every check's verdict, in order. A suite asks one target several checks (the smoke suite:
        six module runs, 6 s one after the other on the demo): with pipelining and no become each
        module run is one independent command over the connection, so once a module run has settled
        the interpreter discovery and the connection (the capability probe's, else the first
        check's), the others go out side by side. Their options are prepared first, one by one
        (that reads the modules' documentation, which is not safe to load from several threads).
        Otherwise (a temporary directory or a become prompt would be shared) they go one by one."""
        prepared = [self.prepare(check, found, args) for check in checks]
        runs = [index for index, (verdict, dummy) in enumerate(prepared) if verdict is None]
        verdicts = [verdict for verdict, dummy in prepared]
        if runs and not settled:
            first = runs.pop(0)
            verdicts[first] = self.verdict(self.run_module(checks[first]['module'], prepared[first][1], task_vars, True))
        if len(runs) > 1 and self._is_pipelining_enabled('new') and getattr(self._connection, 'become', None) is None:
            saved = self._task.check_mode
            # set once for all of them: the task's check mode is what ActionBase hands each module
            self._task.check_mode = True
            try:
                with ThreadPoolExecutor(max_workers=min(len(runs), PARALLEL_CHECKS)) as pool:
                    futures = dict((index, pool.submit(self._execute_module, module_name=checks[index]['module'],
                                                       module_args=prepared[index][1], task_vars=task_vars))
                                   for index in runs)
                    for index in runs:
                        verdicts[index] = self.verdict(futures[index].result())
            finally:
                self._task.check_mode = saved
        else:
            for index in runs:
                verdicts[index] = self.verdict(self.run_module(checks[index]['module'], prepared[index][1], task_vars, True))
        return verdicts

    @staticmethod
    def prepare(check, found, args):
        """``(verdict, None)`` for a check decided without its module (a target without what the fault
        needs is not asked: the run skips the scenario with the gaps as reason; options that do not
        map onto the module), else ``(None, module_args)`` for its check-mode run."""
        gaps = capability_gaps(check.get('needs') or [], found)
        if gaps:
            return dict(skipped=True, gaps=gaps), None
        fixed = dict(state='present', fault_id='preflight-check', duration=check['duration'])
        if args['lease'] is not None:
            fixed['lease'] = args['lease']
        if args['state_dir']:
            fixed['state_dir'] = args['state_dir']
        module_args, problem = module_call(check['module'], fixed, check.get('parameters'),
                                           "scenario '%s' parameters" % check.get('scenario'))
        if problem:
            return dict(failed=True, msg=problem), None
        return None, module_args

    @staticmethod
    def verdict(result):
        """The fault module's verdict on the scenario's options, from its check-mode run."""
        return dict((key, result[key]) for key in ('failed', 'msg', 'changed', 'plan', 'active_faults') if key in result)

    def run_module(self, name, module_args, task_vars, check_mode):
        # The task's check mode is what ActionBase hands the module; the fault checks always run in
        # check mode, the probe never needs to.
        saved = self._task.check_mode
        self._task.check_mode = check_mode
        try:
            return self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
        finally:
            self._task.check_mode = saved
