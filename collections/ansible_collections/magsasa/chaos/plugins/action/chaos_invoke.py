# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run a module with the options a user gave as one mapping, passed through exactly.

The experiment hands a scenario's ``parameters`` to its fault module this way: every value reaches
the module as written (0, false and "" included), and an option the module does not have is
refused by name, with the module's options, before the module runs.
"""

from ansible.plugins.action import ActionBase
from ansible_collections.magsasa.chaos.plugins.plugin_utils._module_options import documented_options
from ansible_collections.magsasa.chaos.plugins.plugin_utils._preflight import unknown_options


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
        module, fixed, parameters = args['module'], args['args'], args['parameters']
        where = args['parameters_name']
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            result.update(failed=True, msg='%s must be a mapping of %s options, got %s %r'
                                           % (where, module, type(parameters).__name__, parameters))
            return result
        options = documented_options(module)
        if options is None:
            result.update(failed=True, msg='module %s is not installed' % module)
            return result
        problems = unknown_options(where, parameters, options, reserved=list(fixed), module=module)
        if problems:
            result.update(failed=True, msg='; '.join(problems))
            return result
        module_args = dict(parameters)
        module_args.update(fixed)
        result.update(self._execute_module(module_name=module, module_args=module_args, task_vars=task_vars))
        return result
