# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The collection's shared lists (module_utils/_catalog.py) for the roles."""

from ansible.errors import AnsibleFilterError
from ansible_collections.magsasa.chaos.plugins.module_utils._catalog import catalog


def chaos_catalog(name):
    """One list of the catalog by name (``slo_defaults``, ``slo_targets``, ``intensities`` ...)."""
    lists = catalog()
    if name not in lists:
        raise AnsibleFilterError('magsasa.chaos.chaos_catalog: %r is not a list of the catalog; use one of %s'
                                 % (name, ', '.join(sorted(lists))))
    return lists[name]


class FilterModule(object):
    """The shared lists."""

    def filters(self):
        return {'chaos_catalog': chaos_catalog}
