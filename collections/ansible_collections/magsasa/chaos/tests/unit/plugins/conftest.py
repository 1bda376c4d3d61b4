# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import os
import sys

# Plain pytest (make unit) needs the directory that holds ansible_collections/ on sys.path;
# ansible-test units sets this up itself.
_COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *(['..'] * 6)))
if os.path.isdir(os.path.join(_COLLECTIONS_ROOT, 'ansible_collections')) and _COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, _COLLECTIONS_ROOT)
