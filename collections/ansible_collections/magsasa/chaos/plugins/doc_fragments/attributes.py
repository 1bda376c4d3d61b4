# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    """The attribute blocks the modules share. A module extends one variant and overrides, per
    attribute, only what differs (a module's key wins over the fragment's, key by key)."""

    # Only the platform: for modules that document every other attribute themselves.
    DOCUMENTATION = r'''
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''

    # A fault module (module_utils/_fault.py): check mode returns the plan, an identical active
    # fault renews its lease. Named fault_module, not fault: ``magsasa.chaos.attributes.fault``
    # would resolve to the ``fault`` fragment.
    FAULT_MODULE = r'''
attributes:
  check_mode:
    support: full
    description: Returns the plan and injects nothing.
  diff_mode:
    support: none
    description: The fault is reported in RV(plan), RV(details) and RV(effect), not as a diff.
  idempotent:
    support: full
    description: An identical active fault is left alone (its lease is renewed); O(state=absent) on a reverted fault changes nothing.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''

    # A module that only reads (a probe, a query, an inventory of the host).
    PROBE = r'''
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Changes nothing.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
'''
