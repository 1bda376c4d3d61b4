"""AWX as code: playbooks/awx_apply.yml with awx/chaos_controller.yml, run for real in --check.

There is no controller here, so the run points at a closed loopback port. Every awx.awx module
still validates its arguments against its own argument spec (AnsibleModule) before its first
request: an item that fails with "trying to connect" passed that validation; a bad option, type
or choice would fail with the module's validation message instead. The token comes from a
vaulted vars file, as the README tells users to keep it, and never appears in the output.
The rendered survey specs and workflow nodes (plain dicts to the modules) are checked against
what AWX accepts and what the playbooks read.
"""

import os
import socket
import subprocess

import pytest
import yaml

import harness
from harness import REPO_ROOT, ansible_env, require, run_playbook

pytestmark = pytest.mark.timeout(300)
TOKEN = "awx-token-do-not-print-4f1c"
APPLY = REPO_ROOT / "playbooks" / "awx_apply.yml"
CATALOG = REPO_ROOT / "collections" / "ansible_collections" / "magsasa" / "chaos" / "roles" / "chaos_suite" / "defaults" / "main.yml"
SURVEY_VARIABLES = {"chaos_group", "chaos_scenario", "chaos_intensity", "chaos_allow_production", "chaos_fail_on_violation"}
TASKS = ["Execution environment", "Project", "Job templates with their surveys",
         "Workflow that halts every fault when the chaos job fails"]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    directory = tmp_path_factory.mktemp("awx-vault")
    password = directory / "vault-password"
    password.write_text("a-test-vault-password\n")
    secrets = directory / "secrets.yml"
    secrets.write_text("chaos_awx_controller_token: %s\n" % TOKEN)
    subprocess.run([require("ansible-vault"), "encrypt", "--vault-password-file", str(password), str(secrets)],
                   check=True, capture_output=True, env=ansible_env())
    assert TOKEN not in secrets.read_text()
    return secrets, password


def apply(vault, url, start_at=None):
    secrets, password = vault
    args = ["--check", "-e", "@%s" % secrets, "--vault-password-file", str(password)]
    if start_at:
        args += ["--start-at-task", start_at]
    result = run_playbook(APPLY, {"chaos_awx_controller_url": url}, args, timeout=240, env=ansible_env(json=True))
    assert TOKEN not in result.stdout + result.stderr
    return result


def task_results(result):
    """{task name: the localhost result} of a JSON-callback run."""
    return {entry["_task"]: entry for entry in harness.task_results(result)}


@pytest.fixture(scope="module")
def applied(vault):
    """{task name: [module_args of each item]} once every item passed its module's validation."""
    url = "http://127.0.0.1:%d" % closed_port()
    rendered = {}
    for task in TASKS:
        result = apply(vault, url, start_at=task)
        assert result.returncode != 0  # nothing listens: the first request fails
        outcome = task_results(result)[task]
        items = outcome.get("results") or []
        assert items, outcome
        for item in items:
            assert "trying to connect to %s/api/v2/" % url in item.get("msg", ""), (task, item.get("msg"))
            assert item["invocation"]["module_args"]["controller_host"] == url
            assert item["invocation"]["module_args"]["controller_oauthtoken"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        rendered[task] = [item["invocation"]["module_args"] for item in items]
    return rendered


def test_the_modules_accept_every_definition(applied):
    assert [a["name"] for a in applied["Execution environment"]] == ["magsasa.chaos EE"]
    assert [a["name"] for a in applied["Project"]] == ["magsasa.chaos"]
    jobs = {a["name"]: a for a in applied["Job templates with their surveys"]}
    assert set(jobs) == {"Chaos - run a scenario group", "Chaos - run one scenario", "Chaos - run an intensity",
                         "Chaos - halt all faults"}
    for job in jobs.values():
        assert (REPO_ROOT / job["playbook"]).is_file()
        assert job["become_enabled"] is True and job["ask_limit_on_launch"] is True
        assert job["project"] == "magsasa.chaos" and job["execution_environment"] == "magsasa.chaos EE"
    imports = {job: yaml.safe_load((REPO_ROOT / jobs[job]["playbook"]).read_text())[0]["ansible.builtin.import_playbook"]
               for job in jobs}
    assert imports["Chaos - halt all faults"] == "magsasa.chaos.halt"
    assert {imports[j] for j in jobs if j != "Chaos - halt all faults"} == {"magsasa.chaos.chaos"}
    assert jobs["Chaos - halt all faults"]["survey_enabled"] is False


def check_survey(survey):
    catalog = yaml.safe_load(CATALOG.read_text())
    assert survey["name"] and survey["description"] is not None
    variables = []
    for question in survey["spec"]:
        assert {"question_name", "variable", "type", "required"} <= set(question), question
        assert question["type"] == "multiplechoice"
        assert isinstance(question["choices"], list) and question["default"] in question["choices"], question
        variables.append(question["variable"])
        if question["variable"] == "chaos_scenario":
            assert question["choices"] == [s["name"] for s in catalog["chaos_suite_scenarios"]]
        if question["variable"] == "chaos_group":
            assert question["choices"] == list(catalog["chaos_suite_groups"])
        if question["variable"] in ("chaos_allow_production", "chaos_fail_on_violation"):
            assert sorted(question["choices"]) == ["false", "true"]
    assert set(variables) <= SURVEY_VARIABLES and len(variables) == len(set(variables))
    assert {"chaos_allow_production", "chaos_fail_on_violation"} <= set(variables)
    return variables


def test_surveys_ask_what_the_playbooks_read(applied):
    jobs = {a["name"]: a for a in applied["Job templates with their surveys"]}
    asks = {name: check_survey(job["survey_spec"]) for name, job in jobs.items() if job["survey_enabled"]}
    assert "chaos_group" in asks["Chaos - run a scenario group"]
    assert "chaos_scenario" in asks["Chaos - run one scenario"]
    assert "chaos_intensity" in asks["Chaos - run an intensity"]


def test_workflow_halts_when_the_chaos_job_fails(applied):
    jobs = {a["name"] for a in applied["Job templates with their surveys"]}
    (workflow,) = applied["Workflow that halts every fault when the chaos job fails"]
    check_survey(workflow["survey_spec"])
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    for node in nodes.values():
        assert node["unified_job_template"]["type"] == "job_template"
        assert node["unified_job_template"]["name"] in jobs
        for kind in ("success_nodes", "failure_nodes", "always_nodes"):
            assert all(ref["identifier"] in nodes for ref in node["related"][kind])
    run = nodes["chaos-run"]
    assert run["unified_job_template"]["name"] == "Chaos - run a scenario group"
    assert [r["identifier"] for r in run["related"]["failure_nodes"]] == ["chaos-halt"]
    assert run["related"]["success_nodes"] == [] and run["related"]["always_nodes"] == []
    assert nodes["chaos-halt"]["unified_job_template"]["name"] == "Chaos - halt all faults"


def test_missing_url_or_token_is_refused_before_any_request(vault, tmp_path):
    result = apply(vault, "not-a-url")
    outcome = task_results(result)["The controller URL and token are required"]
    assert result.returncode != 0 and outcome["failed"]
    secrets, password = vault
    no_token = run_playbook(APPLY, {"chaos_awx_controller_url": "https://awx.example.com"}, ["--check"], timeout=240)
    assert no_token.returncode != 0
    assert "The controller URL and token are required" in no_token.stdout
    assert "awx.example.com/api" not in no_token.stdout + no_token.stderr
    assert os.path.exists(secrets)
