"""The one test harness of the integration tests: real parts, real ansible-playbook runs.

- ``parts``: ``require()`` / ``missing()`` and the ``require_*`` helpers (skip locally, fail under CI=true).
- ``playbooks``: the one way to find and run ``ansible-playbook`` (the repository's ansible.cfg and
  in-repo collection, text output as a user sees it or the ``ansible.posix.json`` callback when a
  test reads task results), write a one-play playbook, parse the output.
- ``services``: the loopback HTTP services the tests probe.
- ``containers``: container hosts for fleet runs and their cleanup (shared with ``bench/``).
"""

from harness.parts import (  # noqa: F401 (the package's interface)
    IN_CI, missing, require, require_docker, require_image, require_postgres_bin_dir, wait_for)
from harness.playbooks import (  # noqa: F401
    COLLECTIONS, JSON_CALLBACK, PYTHON, REPO_ROOT, VENV_BIN, ansible_env, play_recap, playbook_command,
    run_module, run_play, run_playbook, start_playbook, stop_playbook, task_results, write_play)
from harness.services import HealthyHandler, QuietHandler, Service, free_port  # noqa: F401
