"""pytest setup of the integration tests. Their helpers are the ``harness`` package (finding and
running ansible-playbook, requiring real parts, test services, fault state); this makes the in-repo
collection importable, as ``ansible_collections.magsasa.chaos``, and offers the ``state_dir`` fixture."""

import sys

from harness import COLLECTIONS
from harness.faults import state_dir  # noqa: F401 (the fixture: a fault state dir checked for leftovers)

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
