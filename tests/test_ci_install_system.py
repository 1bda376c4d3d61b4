"""`.ci/install-system` decides by capability, installs only what is missing, and is idempotent.

The runs are real (the script probes this machine, checks dockerd, inspects the base image), but
`apt-get` is replaced by a recorder on PATH so a test never installs anything, and `dpkg-query`
by a stub that reports every package absent: a decision taken by Debian package name (which is
what broke on GitHub's runners, whose Docker is docker-ce) would show up as an install.
"""

import os
import stat
import subprocess

import pytest

from harness import REPO_ROOT, missing, require, require_docker

SCRIPT = REPO_ROOT / ".ci" / "install-system"
BASE_IMAGE = "magsasa/debian-base:bookworm"


def write_stub(directory, name, body):
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def stubs(tmp_path):
    """A PATH head with a recording apt-get and a dpkg-query that knows no package."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-get.calls"
    write_stub(bin_dir, "apt-get", 'echo "$*" >> "%s"\nexit 0\n' % calls)
    write_stub(bin_dir, "dpkg-query", "echo \"dpkg-query: no packages found matching $*\" >&2\nexit 1\n")
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    env.pop("INSTALL_SYSTEM_PLAN", None)
    return bin_dir, calls, env


def installed_packages():
    listing = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\\n"],
                             capture_output=True, text=True, check=True)
    return listing.stdout


def image_id(client):
    return client.images.get(BASE_IMAGE).id


def test_second_run_changes_nothing_and_working_docker_is_never_reinstalled(stubs):
    bin_dir, calls, env = stubs
    if os.geteuid() != 0:
        missing("install-system runs as root")
    client = require_docker()
    try:
        before_image = image_id(client)
    except Exception:
        missing("the base image %s is not built (scripts/build-base-image.sh)" % BASE_IMAGE)
    before_packages = installed_packages()
    dockerd_before = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()

    outputs = []
    for _ in range(2):
        result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)

    # dpkg-query called every package absent; still nothing was installed and Docker was left alone.
    assert not calls.exists(), "apt-get was called: %s" % calls.read_text()
    for out in outputs:
        assert "install:" not in out and "docker.io" not in out and "start: dockerd" not in out, out
        assert "base image %s exists" % BASE_IMAGE in out and "system ready: docker" in out, out
    assert outputs[0] == outputs[1]
    assert installed_packages() == before_packages
    assert image_id(client) == before_image
    assert subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split() == dockerd_before
    client.ping()

    plan = subprocess.run(["bash", str(SCRIPT), "--plan"], env=env, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0 and plan.stdout == "", plan.stdout + plan.stderr


def test_plan_when_docker_cli_cannot_reach_a_daemon(stubs):
    """A docker CLI whose `info` fails, but a dockerd binary: start it, never install docker.io."""
    bin_dir, calls, env = stubs
    require("dockerd")
    write_stub(bin_dir, "docker", "exit 1\n")
    plan = subprocess.run(["bash", str(SCRIPT), "--plan"], env=env, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "start: dockerd" in plan.stdout and "build: %s" % BASE_IMAGE in plan.stdout
    assert "docker.io" not in plan.stdout
    assert not calls.exists()


def test_plan_names_the_packages_of_missing_capabilities(stubs, tmp_path):
    """With a PATH that lacks the tools, the plan lists their packages, each once, in one apt-get call."""
    bin_dir, calls, env = stubs
    bare = tmp_path / "bare"
    bare.mkdir()
    for tool in ("bash", "python3", "dirname", "cat", "grep", "ldd", "seq", "sleep", "tail"):
        path = require(tool)
        (bare / tool).symlink_to(path)
    write_stub(bare, "docker", "exit 1\n")
    env = dict(env, PATH=str(bare))
    plan = subprocess.run([str(bare / "bash"), str(SCRIPT), "--plan"], env=env, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    install = [line for line in plan.stdout.splitlines() if line.startswith("install: ")]
    assert len(install) == 1, plan.stdout
    packages = install[0].split()[1:]
    assert len(packages) == len(set(packages))
    for package in ("stress-ng", "mariadb-server", "podman", "sudo", "git", "curl", "build-essential"):
        assert package in packages, packages
    # Capabilities that do not depend on PATH are still found on this machine.
    assert "postgresql" not in packages and "ca-certificates" not in packages
    assert not calls.exists()


@pytest.mark.parametrize("env, message", [
    ({"CHAOS_TARGET": "../../etc"}, "CHAOS_TARGET '../../etc' is not a directory under inventories/"),
    ({"CHAOS_TARGET": "nowhere"}, "CHAOS_TARGET 'nowhere' is not a directory under inventories/"),
    ({"CHAOS_GROUP": "smoke_test; rm -rf /"}, "CHAOS_GROUP must be a group name, got 'smoke_test; rm -rf /'"),
    ({"CHAOS_INTENSITY": "extreme"}, "CHAOS_INTENSITY must be light, medium or heavy, got 'extreme'"),
    ({"CHAOS_FAIL_ON_VIOLATION": "yes"}, "CHAOS_FAIL_ON_VIOLATION must be true or false, got 'yes'"),
    ({"DEMO_MODE": "k8s"}, "DEMO_MODE must be local or container, got 'k8s'"),
])
def test_ci_chaos_refuses_bad_workflow_inputs_before_starting_anything(env, message, tmp_path):
    """The workflow passes its inputs as environment variables; a bad one stops .ci/chaos at once."""
    summary = tmp_path / "summary.md"
    run_env = dict(os.environ, GITHUB_STEP_SUMMARY=str(summary), **env)
    result = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "chaos")], env=run_env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and result.stderr.strip() == "chaos: " + message, result.stdout + result.stderr
    assert result.stdout == "" and not summary.exists()
