# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run a module with the options a user gave as one mapping, passed through exactly.

The experiment hands a scenario's ``parameters`` to its fault module this way: every value reaches
the module as written (0, false and "" included), and an option the module does not have is
refused by name, with the module's options, before the module runs.
"""

from ansible.plugins.action import ActionBase
from ansible_collections.magsasa.chaos.plugins.plugin_utils._module_options import module_call


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(('module', 'args', 'parameters', 'parameters_name'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=dict(
            module=dict(type='str', required=True),
            args=dict(type='dict', default={}),
            parameters=dict(type='raw', default={}),
            parameters_name=dict(type='str', default='parameters'),
        ))
        module_args, problem = module_call(args['module'], args['args'], args['parameters'], args['parameters_name'])
        if problem:
            result.update(failed=True, msg=problem)
            return result
        result.update(self._execute_module(module_name=args['module'], module_args=module_args, task_vars=task_vars))
        return result
