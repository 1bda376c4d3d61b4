# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every fault module documents in RETURN each key the engine (module_utils/_fault.py) returns.

The keys are read from the engine's source (the ``result`` dicts of ``present``, ``renew`` and
``absent``), so a key added to the engine fails here until every module documents it. The RETURN
docs stay per module: ansible-core has no RETURN fragments.
"""

import ast
import importlib
import os

import pytest
import yaml

from ansible_collections.magsasa.chaos.plugins.module_utils import _fault

MODULES = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'modules'))
# Standard return values every module may return without documenting them.
COMMON = frozenset(['changed', 'msg', 'failed', 'warnings'])


def fault_modules():
    """The modules whose main() hands over to the engine."""
    names = []
    for filename in sorted(os.listdir(MODULES)):
        if filename.endswith('.py') and not filename.startswith('_'):
            with open(os.path.join(MODULES, filename)) as handle:
                if 'run_fault_module(' in handle.read():
                    names.append(filename[:-3])
    return names


def engine_keys():
    """The keys of the results the engine's present/renew/absent build."""
    with open(_fault.__file__) as handle:
        tree = ast.parse(handle.read())
    engine = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == 'FaultEngine')
    keys = set()
    for method in engine.body:
        if not isinstance(method, ast.FunctionDef) or method.name not in ('present', 'renew', 'absent'):
            continue
        for node in ast.walk(method):
            call = node if isinstance(node, ast.Call) else None
            if call is not None and isinstance(call.func, ast.Name) and call.func.id == 'dict' and method.name == 'renew':
                keys.update(k.arg for k in call.keywords if k.arg)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == 'dict' \
                    and any(isinstance(t, ast.Name) and t.id == 'result' for t in node.targets):
                keys.update(k.arg for k in node.value.keywords if k.arg)
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == 'result' \
                    and isinstance(node.ctx, ast.Store):
                index = node.slice.value if isinstance(node.slice, ast.Index) else node.slice  # Python < 3.9
                keys.add(index.value)
            if call is not None and isinstance(call.func, ast.Attribute) and call.func.attr == 'update' \
                    and isinstance(call.func.value, ast.Name) and call.func.value.id == 'result':
                keys.update(k.arg for k in call.keywords if k.arg)
    return keys - COMMON


def test_the_engine_keys_are_found():
    keys = engine_keys()
    # A sample of what each path returns, so a broken reader cannot pass with an empty set.
    assert set(['fault_id', 'kind', 'plan', 'state_dir', 'record', 'renewed', 'reverted', 'ended']) <= keys


@pytest.mark.parametrize('name, outlives', [('chaos_cpu', False), ('chaos_disk', True), ('chaos_container', True)])
def test_outlives_reboot_is_read(name, outlives):
    module = importlib.import_module('ansible_collections.magsasa.chaos.plugins.modules.' + name)
    assert outlives_reboot_overridden(module) is outlives


def test_every_fault_module_is_found():
    assert set(['chaos_cpu', 'chaos_memory', 'chaos_disk', 'chaos_netem', 'chaos_process', 'chaos_container',
                'chaos_db']) <= set(fault_modules())


def outlives_reboot_overridden(module):
    """Whether the module's fault can outlive a reboot (only then does the engine return ``boot_hook``)."""
    return any(isinstance(value, type) and issubclass(value, _fault.Fault) and value is not _fault.Fault
               and value.outlives_reboot is not _fault.Fault.outlives_reboot for value in vars(module).values())


@pytest.mark.parametrize('name', fault_modules())
def test_fault_module_returns_are_documented(name):
    module = importlib.import_module('ansible_collections.magsasa.chaos.plugins.modules.' + name)
    documented = set(yaml.safe_load(module.RETURN) or {})
    expected = engine_keys()
    if not outlives_reboot_overridden(module):
        expected.discard('boot_hook')
    missing = sorted(expected - documented)
    assert not missing, '%s RETURN lacks %s' % (name, ', '.join(missing))
