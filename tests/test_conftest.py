"""The shared helpers themselves: a missing part skips locally and fails under CI=true."""

import pytest

import conftest


@pytest.mark.parametrize("in_ci, outcome", [(False, pytest.skip.Exception), (True, pytest.fail.Exception)])
def test_missing_part_skips_locally_and_fails_in_ci(monkeypatch, in_ci, outcome):
    monkeypatch.setattr(conftest, "IN_CI", in_ci)
    with pytest.raises(outcome, match="no-such-tool-4f1c not found"):
        conftest.require("no-such-tool-4f1c")


def test_require_finds_the_venv_tools():
    assert conftest.require("ansible-playbook").endswith("ansible-playbook")


def test_play_recap_reads_the_totals():
    output = ("PLAY RECAP *****\n"
              "localhost                  : ok=28   changed=0    unreachable=0    failed=0    skipped=7\n"
              "web1                       : ok=3    changed=2    unreachable=1    failed=1    skipped=0\n")
    assert conftest.play_recap(output) == {
        "localhost": {"ok": 28, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 7},
        "web1": {"ok": 3, "changed": 2, "unreachable": 1, "failed": 1, "skipped": 0},
    }
