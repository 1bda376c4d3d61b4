"""The harness itself: a missing part skips locally and fails under CI=true; the runner's parsers."""

import pytest

import harness
from harness import parts


@pytest.mark.parametrize("in_ci, outcome", [(False, pytest.skip.Exception), (True, pytest.fail.Exception)])
def test_missing_part_skips_locally_and_fails_in_ci(monkeypatch, in_ci, outcome):
    monkeypatch.setattr(parts, "IN_CI", in_ci)
    with pytest.raises(outcome, match="no-such-tool-4f1c not found"):
        harness.require("no-such-tool-4f1c")


def test_require_finds_the_venv_tools():
    assert harness.require("ansible-playbook").endswith("ansible-playbook")


def test_play_recap_reads_the_totals():
    output = ("PLAY RECAP *****\n"
              "localhost                  : ok=28   changed=0    unreachable=0    failed=0    skipped=7\n"
              "web1                       : ok=3    changed=2    unreachable=1    failed=1    skipped=0\n")
    assert harness.play_recap(output) == {
        "localhost": {"ok": 28, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 7},
        "web1": {"ok": 3, "changed": 2, "unreachable": 1, "failed": 1, "skipped": 0},
    }


def test_a_run_and_its_json_results(tmp_path):
    """One real run through the harness: the JSON callback's results, one per task, in order."""
    results = harness.task_results(harness.run_play(tmp_path, """
        - name: First
          ansible.builtin.set_fact:
            answer: 42
        - name: Second
          ansible.builtin.command: "true"
          changed_when: false
        """, json=True))
    assert [r["_task"] for r in results] == ["First", "Second"]
    assert results[0]["ansible_facts"] == {"answer": 42} and results[1]["rc"] == 0
    assert all(r["_host"] == "localhost" for r in results)


def test_task_results_names_a_run_without_json():
    with pytest.raises(AssertionError, match="no JSON"):
        harness.task_results("ERROR! the playbook could not be found")


def test_the_environment_drops_the_callers_ansible_settings(monkeypatch):
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "oneline")
    monkeypatch.setenv("CHAOS_REPORT_OUTPUT_DIR", "/elsewhere")
    env = harness.ansible_env(json=True, EXTRA="1", PATH=None)
    assert env["ANSIBLE_STDOUT_CALLBACK"] == harness.JSON_CALLBACK and "CHAOS_REPORT_OUTPUT_DIR" not in env
    assert env["EXTRA"] == "1" and "PATH" not in env
    assert env["ANSIBLE_CONFIG"] == str(harness.REPO_ROOT / "ansible.cfg")
