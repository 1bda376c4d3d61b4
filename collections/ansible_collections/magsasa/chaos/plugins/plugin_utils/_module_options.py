# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options a module accepts, read on the controller from the module's own documentation.

ansible-test sanity (validate-modules) holds every module's DOCUMENTATION equal to its argument
spec, so this is the one list of each fault's options: the role's preflight and the chaos_invoke
action read it here instead of keeping copies in task files.
"""

from ansible.plugins.loader import fragment_loader, module_loader
from ansible.utils.plugin_docs import get_docstring
from ansible_collections.magsasa.chaos.plugins.plugin_utils._preflight import unknown_options

_CACHE = {}


def documented_options(module):
    """``{option: spec}`` of a module by its name (FQCN), doc fragments included; None when no
    such module is installed."""
    if module not in _CACHE:
        context = module_loader.find_plugin_with_context(module)
        if not context.resolved:
            return None
        collection = '.'.join(context.resolved_fqcn.split('.')[:2]) if context.resolved_fqcn.count('.') >= 2 else None
        _CACHE[module] = options_in_file(context.plugin_resolved_path, collection)
    return _CACHE[module]


def options_in_file(path, collection=None):
    """``{option: spec}`` documented in a module file, doc fragments included."""
    doc = get_docstring(path, fragment_loader, collection_name=collection)[0] or {}
    return doc.get('options') or {}


def module_call(module, fixed, parameters, where='parameters'):
    """``(module_args, None)`` for running ``module`` with the user's ``parameters`` exactly as given
    plus the caller's ``fixed`` options, or ``(None, message)`` when the user's mapping is not one
    the module takes: not a mapping, an option the module does not document, or one ``fixed`` sets."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return None, '%s must be a mapping of %s options, got %s %r' % (where, module, type(parameters).__name__, parameters)
    options = documented_options(module)
    if options is None:
        return None, 'module %s is not installed' % module
    problems = unknown_options(where, parameters, options, reserved=list(fixed), module=module)
    if problems:
        return None, '; '.join(problems)
    module_args = dict(parameters)
    module_args.update(fixed)
    return module_args, None
