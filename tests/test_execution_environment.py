"""The execution environment: `ansible-builder create` writes a build context from
execution-environment.yml, and ansible-builder's introspection of the collection (built with
`ansible-galaxy collection build`, installed from the tarball) finds its real Python and system
needs. No image is built here (no registry); `ansible-builder build` does that where there is one.
"""

import re
import subprocess

import pytest
import yaml

from harness import REPO_ROOT, require

pytestmark = pytest.mark.timeout(300)
COLLECTION = REPO_ROOT / "collections" / "ansible_collections" / "magsasa" / "chaos"
# What the modules and plugins import (see the collection's requirements.txt for which needs what).
PYTHON_NEEDS = ["psutil", "docker", "psycopg[binary]", "PyMySQL", "boto3", "prometheus-client"]
# The name each need is imported by.
IMPORT_NAMES = {"psycopg[binary]": "psycopg", "PyMySQL": "pymysql", "prometheus-client": "prometheus_client"}
SYSTEM_NEEDS = ["openssh-clients [platform:rpm]", "openssh-client [platform:dpkg]", "stress-ng", "iproute [platform:rpm]",
                "iproute2 [platform:dpkg]", "nftables"]


def run(*command, cwd=None):
    result = subprocess.run([str(c) for c in command], cwd=str(cwd or REPO_ROOT), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, "%s\n%s\n%s" % (" ".join(map(str, command)), result.stdout, result.stderr)
    return result.stdout


def introspect(collections_dir):
    out = run(require("ansible-builder"), "introspect", collections_dir)
    data = yaml.safe_load(out.split("\n", 1)[1])  # after the "# Dependency data" comment line
    return ([line.split(" #")[0].strip() for line in data["python"]],
            [line.split(" #")[0].strip() for line in data["system"]])


def names(requirements):
    return [r.split(">=")[0].split("~=")[0].split("==")[0] for r in requirements]


def test_built_collection_declares_its_python_and_system_needs(tmp_path):
    run(require("ansible-galaxy"), "collection", "build", COLLECTION, "--output-path", tmp_path)
    tarballs = list(tmp_path.glob("magsasa-chaos-*.tar.gz"))
    assert len(tarballs) == 1
    run(require("ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p", tmp_path / "installed", tarballs[0])
    python, system = introspect(tmp_path / "installed")
    assert names(python) == PYTHON_NEEDS
    assert system == SYSTEM_NEEDS
    # Every Python need is something the collection really imports.
    sources = "\n".join(p.read_text() for p in (COLLECTION / "plugins").rglob("*.py"))
    for need in PYTHON_NEEDS:
        module = IMPORT_NAMES.get(need, need)
        assert re.search(r"^\s*(import|from) %s\b" % re.escape(module), sources, re.MULTILINE), need


def test_ansible_builder_create_writes_a_context_that_carries_the_collection(tmp_path):
    context = tmp_path / "context"
    out = run(require("ansible-builder"), "create", "-f", REPO_ROOT / "execution-environment.yml", "--context", context)
    assert "Complete! The build context can be found at: %s" % context in out
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/fedora:41"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "/output/scripts/assemble" in containerfile
    build = context / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    ours = [c for c in requirements["collections"] if c.get("type") == "dir"]
    assert ours == [{"name": "./collections/magsasa.chaos", "type": "dir"}]
    # The entry installs from the context as the galaxy stage will (cwd /build there), and the
    # assemble stage's introspection then finds the same needs.
    (tmp_path / "ours.yml").write_text(yaml.safe_dump({"collections": ours}))
    run(require("ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-r", tmp_path / "ours.yml",
        "-p", tmp_path / "installed", cwd=build)
    python, system = introspect(tmp_path / "installed")
    assert names(python) == PYTHON_NEEDS and system == SYSTEM_NEEDS
