#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_capabilities
short_description: Find out, read-only, whether a host has what a fault needs
version_added: 0.1.0
description:
  - Reports which of the named tools, Python modules, kernel qdiscs and systemd units a host has,
    so a chaos run can skip a scenario the host cannot run (with the reason and the fix) before
    the first fault instead of failing half way through.
  - Looks tools up the way the fault modules do (the module's PATH plus the sbin directories), and
    Python modules with the interpreter the fault modules run with. Changes nothing.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.probe
options:
  tools:
    description:
      - Executables to look for, by name or absolute path.
    type: list
    elements: str
    default: []
  python_modules:
    description:
      - Python modules that must be importable, such as V(docker), V(psycopg) or V(pymysql).
    type: list
    elements: str
    default: []
  qdiscs:
    description:
      - Queueing disciplines the kernel must be able to create, such as V(netem) or V(prio). A qdisc counts
        when it is loaded, built in, or shipped as a module the kernel loads on demand.
    type: list
    elements: str
    default: []
  systemd_units:
    description:
      - systemd units that must be known to systemd.
    type: list
    elements: str
    default: []
  active_faults:
    description:
      - Also list the faults active on the host, as O(magsasa.chaos.chaos_faults#module:state=query) does, so one
        read-only visit answers both what a fault needs and whether the host already carries one (the chaos run's
        active-fault lock for its first experiment).
    type: bool
    default: false
  state_dir:
    description:
      - The fault state directory to read with O(active_faults). Default as for the fault modules.
    type: path
  persist_dir:
    description:
      - The directory of faults that outlive a reboot, read with O(active_faults). Default as for the fault modules.
    type: path
seealso:
  - module: magsasa.chaos.chaos_netem
'''

EXAMPLES = r'''
- name: Can this host drop packets with nftables and stop a database container?
  magsasa.chaos.chaos_capabilities:
    tools: [nft, ip]
    python_modules: [docker, psycopg]
  register: chaos_caps
'''

RETURN = r'''
tools:
  description: Per tool, its path, or null when it is not installed.
  returned: always
  type: dict
  sample: {"nft": "/usr/sbin/nft", "tc": null}
python_modules:
  description: Per Python module, whether it is importable.
  returned: always
  type: dict
  sample: {"docker": true}
qdiscs:
  description: Per qdisc, whether the kernel can create it.
  returned: always
  type: dict
  sample: {"netem": false}
systemd_units:
  description: Per unit, whether systemd knows it.
  returned: always
  type: dict
  sample: {"postgresql.service": true}
faults:
  description:
    - The active faults, each summarised as in the RV(magsasa.chaos.chaos_faults#module:faults) of
      M(magsasa.chaos.chaos_faults) (C(fault_id), C(kind), C(module), C(expires_at), C(remaining), C(guard_alive) ...).
  returned: when O(active_faults=true)
  type: list
  elements: dict
  sample: [{"fault_id": "cpu-1a2b3c4d5e", "kind": "cpu", "remaining": 12.5, "guard_alive": true}]
'''

import importlib
import os
import platform

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import active_faults


def find_tool(module, name):
    if os.path.isabs(name):
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return module.get_bin_path(name)


def importable(name):
    try:
        importlib.import_module(name)
    except Exception:  # any failure to import (missing, broken build) means the fault cannot use it
        return False
    return True


def kernel_has_qdisc(kind):
    if os.path.isdir('/sys/module/sch_%s' % kind):
        return True
    modules_dir = '/lib/modules/%s' % platform.release()
    for listing in ('modules.builtin', 'modules.dep'):
        try:
            with open(os.path.join(modules_dir, listing)) as handle:
                if any('/sch_%s.ko' % kind in line for line in handle):
                    return True
        except (IOError, OSError):
            continue
    return False


def systemd_knows(module, systemctl, unit):
    if not systemctl:
        return False
    rc, out, err = module.run_command([systemctl, 'show', '--property', 'LoadState', '--value', unit])
    return rc == 0 and out.strip() not in ('', 'not-found')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tools=dict(type='list', elements='str', default=[]),
            python_modules=dict(type='list', elements='str', default=[]),
            qdiscs=dict(type='list', elements='str', default=[]),
            systemd_units=dict(type='list', elements='str', default=[]),
            active_faults=dict(type='bool', default=False),
            state_dir=dict(type='path'),
            persist_dir=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    systemctl = module.get_bin_path('systemctl') if params['systemd_units'] else None
    result = dict(
        changed=False,
        tools=dict((name, find_tool(module, name)) for name in params['tools']),
        python_modules=dict((name, importable(name)) for name in params['python_modules']),
        qdiscs=dict((kind, kernel_has_qdisc(kind)) for kind in params['qdiscs']),
        systemd_units=dict((unit, systemd_knows(module, systemctl, unit)) for unit in params['systemd_units']),
    )
    if params['active_faults']:
        result['faults'] = active_faults(params['state_dir'], params['persist_dir'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
