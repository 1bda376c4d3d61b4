# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Make ``ansible_collections.magsasa.chaos`` importable under a plain ``pytest`` run (ansible-test does it itself)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *(['..'] * 7)))
if os.path.isdir(os.path.join(COLLECTIONS_ROOT, 'ansible_collections')) and COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
