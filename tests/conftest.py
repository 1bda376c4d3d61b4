"""Shared helpers for the end-to-end tests: real ansible-playbook runs against real parts.

``require(tool)`` and ``missing(reason)`` skip a test when a part is not installed, but fail
it under CI=true, where nothing real may be skipped. ``run_playbook`` runs a playbook of this
repository with its ansible.cfg and in-repo collection; ``play_recap`` reads the totals.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
VENV_BIN = Path(sys.executable).parent


def missing(reason):
    """Skip the calling test, or fail it under CI=true."""
    if IN_CI:
        pytest.fail("%s (CI=true: a missing part fails the test instead of skipping it)" % reason, pytrace=False)
    pytest.skip(reason)


def require(tool, hint=None):
    """Return the path of an executable (name or absolute path), or skip/fail when absent."""
    found = shutil.which(tool, path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
    if not found:
        missing("%s not found%s" % (tool, "; " + hint if hint else ""))
    return found


def require_postgres_bin_dir():
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda p: [int(n) for n in re.findall(r"\d+", p)])
    candidates = [os.path.dirname(p) for p in candidates if os.path.exists(os.path.join(os.path.dirname(p), "initdb"))]
    if not candidates:
        missing("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return candidates[-1]


def require_docker():
    """A Docker SDK client for a reachable dockerd."""
    try:
        import docker
    except ImportError:
        missing("the Docker SDK for Python is not installed (pip install docker)")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach the daemon means the part is missing
        missing("no reachable Docker daemon (%s)" % exc)
    return client


def require_image(name, hint="scripts/build-base-image.sh builds it"):
    """A locally built docker image the test needs (there is no registry to pull it from)."""
    client = require_docker()
    try:
        client.images.get(name)
    except Exception:  # docker.errors.ImageNotFound and friends: the part is missing
        missing("image %s is not built (%s)" % (name, hint))
    return client


def ansible_env(**extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
    })
    env.update(extra)
    return env


def run_playbook(playbook, extra_vars=None, args=(), timeout=300, env=None):
    """Run ``playbooks/<playbook>`` (or a path) from the repository root; return the CompletedProcess.

    ``extra_vars`` is passed as one JSON ``-e`` argument. Output is captured as text; the
    caller asserts on ``returncode`` (a failed run does not raise).
    """
    path = Path(playbook)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / "playbooks" / playbook
    command = [require("ansible-playbook"), str(path)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    command += list(args)
    return subprocess.run(command, cwd=str(REPO_ROOT), env=env or ansible_env(), capture_output=True,
                          text=True, timeout=timeout)


def play_recap(output):
    """``{host: {"ok": n, "changed": n, "failed": n, ...}}`` from the PLAY RECAP of a run."""
    totals = {}
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    for host, counters in re.findall(r"^(\S+)\s+:\s+(.*)$", recap, re.MULTILINE):
        totals[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)}
    return totals
