"""Real parts a test needs: a missing one skips the test locally and fails it under CI=true."""

import glob
import os
import re
import shutil
import sys
import time

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
VENV_BIN = os.path.dirname(sys.executable)


def missing(reason):
    """Skip the calling test, or fail it under CI=true."""
    if IN_CI:
        pytest.fail("%s (CI=true: a missing part fails the test instead of skipping it)" % reason, pytrace=False)
    pytest.skip(reason)


def require(tool, hint=None):
    """Return the path of an executable (name or absolute path), or skip/fail when absent.

    Searched in this venv, then PATH, then the sbin directories (root's tools: ip, nft, tc).
    """
    found = shutil.which(tool, path=os.pathsep.join([VENV_BIN, os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
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


def wait_for(predicate, timeout, interval=0.1):
    """Poll ``predicate`` until it returns something true or ``timeout`` seconds pass; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
