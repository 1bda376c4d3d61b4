# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The argument-spec rules (required_if, required_by, mutually_exclusive) that replaced hand checks
refuse bad input with a message naming the field, before the module does anything."""

import importlib
import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_main(name, args, capsys):
    module = importlib.import_module('ansible_collections.magsasa.chaos.plugins.modules.' + name)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    assert exit_info.value.code == 1
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize('name, args, message', [
    ('chaos_container', dict(name='web', compose_project='shop', duration=5),
     "missing parameter(s) required by 'compose_project': compose_service"),
    ('chaos_db', dict(engine='postgresql', action='lock', duration=5),
     'action is lock but all of the following are missing: table'),
    ('resilience_probe', dict(state='status'), 'state is status but all of the following are missing: probe_id'),
    ('resilience_probe', dict(state='stopped'), 'state is stopped but all of the following are missing: probe_id'),
    ('chaos_process', dict(name='x', pid=1, duration=5), 'parameters are mutually exclusive: pid|pidfile|name'),
    ('chaos_process', dict(name='x', count=1, percent=5, duration=5), 'parameters are mutually exclusive: count|percent'),
    ('chaos_container', dict(duration=5), 'state is present but any of the following are missing: name, id, labels'),
])
def test_spec_rules_refuse_bad_input(name, args, message, capsys, tmp_path):
    args = dict(args, state_dir=str(tmp_path)) if name != 'resilience_probe' else dict(args, probe_dir=str(tmp_path))
    result = run_main(name, args, capsys)
    assert result['failed'] is True
    assert message in result['msg']
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
