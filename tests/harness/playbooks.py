"""The one way the tests run ``ansible-playbook``.

Every run uses this repository's ansible.cfg and in-repo collection, with an environment cleaned
of the caller's ``ANSIBLE_*`` and ``CHAOS_*`` settings, so a test sees only what it sets itself.
Output is what a user sees (the ansible.cfg stdout callback) unless the test reads task results:
then ``json=True`` selects ``ansible.posix.json`` and ``task_results()`` parses it.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from harness.parts import VENV_BIN, require

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = str(REPO_ROOT / "collections")
MODULES = os.path.join(COLLECTIONS, "ansible_collections", "magsasa", "chaos", "plugins", "modules")
PYTHON = sys.executable
JSON_CALLBACK = "ansible.posix.json"


def ansible_env(json=False, config=None, **extra):  # pylint: disable=redefined-outer-name
    """The environment of a run; ``extra`` adds variables, a value of None removes one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CHAOS_"))}
    env.update({
        "ANSIBLE_CONFIG": str(config or REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": os.pathsep.join([VENV_BIN, env.get("PATH", "")]),
    })
    if json:
        env["ANSIBLE_STDOUT_CALLBACK"] = JSON_CALLBACK
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def playbook_command(playbook, inventory=None, extra_vars=None, args=()):
    """``ansible-playbook`` argv: ``playbook`` is a path, a name under ``playbooks/`` or a collection
    playbook (``magsasa.chaos.chaos``); ``extra_vars`` goes as one JSON ``-e``."""
    path = Path(str(playbook))
    if not path.is_absolute() and not (REPO_ROOT / path).exists() and (REPO_ROOT / "playbooks" / path).exists():
        path = REPO_ROOT / "playbooks" / path
    command = [require("ansible-playbook")]
    if inventory is not None:
        command += ["-i", str(inventory)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    # the playbook right before ``args``: a second playbook there keeps the positionals together
    return command + [str(path)] + [str(arg) for arg in args]


def run_playbook(playbook, extra_vars=None, args=(), timeout=300, env=None, inventory=None, cwd=None):
    """Run a playbook from the repository root (or ``cwd``); return the CompletedProcess.

    Output is captured as text; the caller asserts on ``returncode`` (a failed run does not raise).
    """
    return subprocess.run(playbook_command(playbook, inventory, extra_vars, args), cwd=str(cwd or REPO_ROOT),
                          env=env or ansible_env(), capture_output=True, text=True, timeout=timeout)


def start_playbook(playbook, extra_vars=None, args=(), env=None, inventory=None, cwd=None, merge_stderr=False):
    """Start a run in the background, in its own session (so a test can SIGKILL its whole tree)."""
    return subprocess.Popen(playbook_command(playbook, inventory, extra_vars, args), cwd=str(cwd or REPO_ROOT),
                            env=env or ansible_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True,
                            start_new_session=True)


def stop_playbook(proc):
    """SIGKILL a background run's whole process group if it is still running."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()


def write_play(directory, tasks, host=None):
    """Write a one-play playbook; return ``(playbook, inventory)``.

    ``tasks`` is a list of task dicts or YAML text. Without ``host`` the play runs on localhost
    (local connection, this venv's python); ``host`` is a dict of inventory variables for a host
    named ``target``.
    """
    if isinstance(tasks, str):
        tasks = yaml.safe_load(textwrap.dedent(tasks))
    if host is None:
        play = dict(name="Test play", hosts="localhost", connection="local", gather_facts=False,
                    vars=dict(ansible_python_interpreter=PYTHON), tasks=tasks)
    else:
        play = dict(name="Test play", hosts="target", gather_facts=False, tasks=tasks)
    stamp = "%d-%d" % (os.getpid(), time.time() * 1e6)
    path = os.path.join(str(directory), "play-%s.yml" % stamp)
    with open(path, "w") as handle:
        json.dump([play], handle, indent=1)
    inventory = "localhost,"
    if host is not None:
        inventory = os.path.join(str(directory), "inventory-%s.yml" % stamp)
        with open(inventory, "w") as handle:
            json.dump(dict(all=dict(hosts=dict(target=host))), handle)
    return path, inventory


def run_play(directory, tasks, host=None, json=False, timeout=180, env=None):  # pylint: disable=redefined-outer-name
    """Write and run a one-play playbook (see ``write_play``); return the CompletedProcess."""
    path, inventory = write_play(directory, tasks, host)
    return run_playbook(path, inventory=inventory, timeout=timeout, env=env or ansible_env(json=json))


def task_results(proc, stderr=""):
    """The ``ansible.posix.json`` output of a run (a CompletedProcess or its stdout) as one entry per
    task: the (first) host's result plus ``_task``, ``_host`` and ``_duration``."""
    stdout = proc if isinstance(proc, str) else proc.stdout
    stderr = stderr if isinstance(proc, str) else proc.stderr
    try:
        data = json.loads(stdout[stdout.index("{"):])
    except ValueError:
        code = "?" if isinstance(proc, str) else proc.returncode
        raise AssertionError("ansible-playbook rc=%s, no JSON:\n%s\n%s" % (code, stdout[-4000:], stderr[-4000:]))
    results = []
    for play in data["plays"]:
        for task in play["tasks"]:
            host, result = next(iter(task["hosts"].items()), (None, {}))
            result = dict(result, _task=task["task"]["name"], _host=host,
                          _duration=task["task"].get("duration", {}))
            results.append(result)
    return results


def play_recap(output):
    """``{host: {"ok": n, "changed": n, "failed": n, ...}}`` from the PLAY RECAP of a run."""
    totals = {}
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    for host, counters in re.findall(r"^(\S+)\s+:\s+(.*)$", recap, re.MULTILINE):
        totals[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)}
    return totals


def run_module(name, args, timeout=120):
    """Run a collection module file directly (as AnsiballZ would) and return its JSON result."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        proc = subprocess.run([PYTHON, os.path.join(MODULES, name + ".py"), handle.name],
                              env=ansible_env(PYTHONPATH=COLLECTIONS), capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(handle.name)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc %d): %s %s"
                             % (name, proc.returncode, proc.stdout, proc.stderr))
