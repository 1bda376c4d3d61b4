"""A short soak in the test suite: bench/soak.py runs a two-scenario suite three times back to back
against a demo of its own, and nothing may grow (the full smoke-suite soak is a benchmark, not a
test). The growth judgement itself is checked on plain rows first."""

import json
import subprocess
import sys

import pytest

from harness import REPO_ROOT, require, require_postgres_bin_dir

sys.path.insert(0, str(REPO_ROOT / 'bench'))
import soak  # noqa: E402

SHORT_SUITE = {
    'chaos_suite_scenarios': [
        dict(name='Soak CPU', type='cpu', intensity='light', targets='demo-local', duration=2,
             parameters=dict(workers=1, load_percent=30)),
        dict(name='Soak Packet Loss', type='packet_loss', intensity='light', targets='demo-local', duration=2,
             parameters=dict(loss_percent=5)),
    ],
    'chaos_suite_groups': {'soak': ['Soak CPU', 'Soak Packet Loss']},
    'chaos_experiment_baseline_seconds': 1,
    'chaos_experiment_tick': 1,
    'chaos_experiment_lease': 8,
    'chaos_suite_pause_between': 0,
}


def row(**values):
    base = dict((column, 0) for column in soak.GROWTH)
    base.update(values)
    return base


@pytest.mark.parametrize('rows, expected', [
    ([row()], []),
    ([row(), row()], []),
    ([row(state_files=1), row(state_files=2)], ['state_files']),
    # Three runs: the first warms up and is not the reference.
    ([row(demo_procs=9), row(demo_procs=13), row(demo_procs=13)], []),
    ([row(demo_procs=9), row(demo_procs=13), row(demo_procs=16)], ['demo_procs']),
    ([row(fault_procs_left=0), row(), row(fault_procs_left=1)], ['fault_procs_left']),
    # Within the slack: RSS may wobble by 10 % + 8 MB.
    ([row(demo_rss_mb=100.0), row(demo_rss_mb=100.0), row(demo_rss_mb=117.0)], []),
    ([row(demo_rss_mb=100.0), row(demo_rss_mb=100.0), row(demo_rss_mb=119.0)], ['demo_rss_mb']),
    # A PostgreSQL worker that comes and goes is a moment, not a leak: the floor of the last three runs is judged.
    ([row(demo_fds=93), row(demo_fds=94), row(demo_fds=114), row(demo_fds=104), row(demo_fds=94), row(demo_fds=104)],
     []),
    ([row(demo_fds=93), row(demo_fds=94), row(demo_fds=100), row(demo_fds=112), row(demo_fds=113), row(demo_fds=115)],
     ['demo_fds']),
    # What a fault leaves behind counts in any run, even when a later run cleans it up.
    ([row(), row(), row(run_tables=1), row(), row()], ['run_tables']),
    ([row(), row(), row(containers=1), row()], ['containers']),
])
def test_grown(rows, expected):
    assert soak.grown(rows) == expected


def test_render_names_every_column_and_the_verdict():
    rows = [dict(row(), iter=1, wall_s=1.0, verdict='PASS', history=2, host_tables=0, host_qdiscs=0, host_containers=0)]
    text = soak.render(rows, soak.verdict_of(rows))
    header = text.splitlines()[0]
    for title in ('wall s', 'demo procs', 'demo fds', 'demo RSS MB', 'ctl RSS MB', 'fault procs left', 'state files',
                  'run nft tables', 'run qdiscs', 'demo containers down', 'host containers'):
        assert title in header
    assert text.endswith('verdict: nothing grows')


@pytest.mark.timeout(900)
def test_three_short_runs_back_to_back_grow_nothing(tmp_path):
    require_postgres_bin_dir()
    require('supervisord', 'pip install supervisor')
    out = tmp_path / 'soak.json'
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'bench' / 'soak.py'), '--iterations', '3', '--group', 'soak',
                           '--extra-vars', json.dumps(SHORT_SUITE), '--json', str(out)],
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=880)
    print(proc.stdout[-3000:])
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result['rows']
    assert len(rows) == 3
    # Every run finished and wrote its report; none left a fault process, a record, a table or a qdisc.
    assert all(r['verdict'] not in ('no report',) and not r['verdict'].startswith('rc=') for r in rows), rows
    assert all(r['history'] == 2 * r['iter'] for r in rows), 'each run reverts its two faults into the history'
    assert all(r['fault_procs_left'] == 0 and r['run_tables'] == 0 and r['run_qdiscs'] == 0 for r in rows), rows
    assert result['verdict'] == 'nothing grows', result['verdict']
    assert proc.returncode == 0
