"""The magsasa.chaos.chaos_report callback, tested through real ansible-playbook runs.

Each test runs tests/playbooks/report_records.yml (localhost, connection local, two inventory
hosts) which publishes experiment records the way the chaos_experiment role does, then reads
back the files the callback wrote.
"""

import json
import xml.etree.ElementTree as ET

import pytest

from harness import REPO_ROOT, ansible_env, run_playbook

ROOT = REPO_ROOT
PLAYBOOK = ROOT / 'tests' / 'playbooks' / 'report_records.yml'
VERDICT_PLAYBOOK = ROOT / 'tests' / 'playbooks' / 'suite_verdict.yml'
INVENTORY = ROOT / 'tests' / 'playbooks' / 'inventory' / 'report_hosts.yml'
MEMORY_NAME_RAW = 'Medium Memory Stress | <img src=x onerror=alert(1)>'
MEMORY_NAME_ESCAPED = 'Medium Memory Stress \\| &lt;img src=x onerror=alert(1)&gt;'

pytestmark = pytest.mark.timeout(300)


def run_records(tmp_path, *args, env=None, config=None, cwd=None, playbook=PLAYBOOK):
    """Run the records playbook (or ``playbook``) with the callback enabled; return the CompletedProcess."""
    settings = {'ANSIBLE_CALLBACKS_ENABLED': 'magsasa.chaos.chaos_report',
                'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'),
                'CHAOS_REPORT_OUTPUT_DIR': str(tmp_path / 'reports')}
    settings.update(env or {})
    return run_playbook(playbook, inventory=INVENTORY, args=args, env=ansible_env(config=config, **settings),
                        cwd=cwd, timeout=240)


def summary_lines(proc):
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith('chaos_report: ')]


def read_reports(directory):
    markdown = (directory / 'chaos_report.md').read_text()
    results = json.loads((directory / 'chaos_results.json').read_text())
    junit = ET.parse(str(directory / 'junit.xml')).getroot()
    return markdown, results, junit


def test_violations_run_writes_markdown_json_and_junit(tmp_path):
    proc = run_records(tmp_path, '-e', 'report_set=violations', '-e', 'report_result_record=true')
    assert proc.returncode == 0, proc.stdout + proc.stderr  # fail_on_violation is off by default
    markdown, results, junit = read_reports(tmp_path / 'reports')

    # Both hosts published the same three records and one came as a task result: four, not seven.
    names = [e['name'] for e in results['experiments']]
    assert names == ['Light CPU Stress', 'Medium Memory Stress | <img src=x onerror=alert(1)>',
                     'Process Crash', 'Database Downtime (light)']
    assert results['summary']['verdict'] == 'FAIL'
    assert results['summary']['counts'] == {'total': 4, 'passed': 1, 'violated': 1, 'aborted': 0,
                                            'failed': 1, 'skipped': 1, 'dry_run': 0}
    assert results['run']['playbooks'] == ['tests/playbooks/report_records.yml']
    assert results['run']['inventories'][0] == 'tests/playbooks/inventory/report_hosts.yml'
    assert results['run']['environments'] == ['staging']
    assert results['run']['check_mode'] is False
    assert results['run']['started_at'] <= results['run']['ended_at']
    memory = results['experiments'][1]
    assert memory['metrics']['error_rate_percent'] == 12.0
    assert memory['fault']['parameters'] == {'size_mb': 512}

    assert '**Verdict: FAIL**' in markdown
    assert '| Light CPU Stress | cpu, light | \u2705 PASS | 97.5 |' in markdown
    assert '| %s | memory, medium | \u274c FAIL | 41 |' % MEMORY_NAME_ESCAPED in markdown
    assert '| Process Crash | process | \u274c ERROR |' in markdown
    assert '| Database Downtime (light) | database | the chaos\\_db module has not landed yet |' in markdown
    assert '12 % \u274c' in markdown and '88 % \u274c' in markdown and '730 ms \u274c' in markdown
    assert markdown.count('```mermaid') == 2  # the two experiments with a timeline
    assert 'xychart-beta' in markdown and 'Medium Memory Stress img src=x onerror=alert(1) - fault 0 s to 20 s' in markdown
    assert 'exponential backoff' in markdown and 'readiness probes' in markdown.lower()
    assert '<img' not in markdown and '\n# pwned' not in markdown
    for secret in ('hunter2', 's3cr3t-token-value', 'hooks.example.invalid'):
        assert secret not in markdown and secret not in json.dumps(results)

    assert junit.tag == 'testsuite'
    assert (junit.get('tests'), junit.get('failures'), junit.get('errors'), junit.get('skipped')) == ('4', '1', '1', '1')
    failure = junit.find("testcase[@classname='chaos.staging.memory']/failure")
    assert 'error_rate_percent' in failure.get('message') and 'recovery_seconds' in failure.get('message')
    assert 'mttr_seconds' not in failure.get('message')
    assert junit.find("testcase[@name='Process Crash']/error") is not None
    assert junit.find("testcase[@name='Database Downtime (light)']/skipped") is not None

    assert len(summary_lines(proc)) == 1
    assert summary_lines(proc)[0].startswith('chaos_report: FAIL - 4 experiments, 1 passed, 1 violated SLOs')


def test_records_published_per_host_are_collected_once(tmp_path):
    proc = run_records(tmp_path, '-e', 'report_set=violations', '-e', 'report_per_host=true')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _markdown, results, junit = read_reports(tmp_path / 'reports')
    assert [e['type'] for e in results['experiments']] == ['cpu', 'memory', 'database']
    assert junit.get('tests') == '3'


def test_passing_run_is_pass(tmp_path):
    proc = run_records(tmp_path, env={'CHAOS_FAIL_ON_VIOLATION': 'true'})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markdown, results, junit = read_reports(tmp_path / 'reports')
    assert '**Verdict: PASS**' in markdown and 'DRY RUN' not in markdown
    assert '## Violations and recommendations' not in markdown
    assert [e['status'] for e in results['experiments']] == ['completed']
    assert (junit.get('tests'), junit.get('failures'), junit.get('errors')) == ('1', '0', '0')
    assert summary_lines(proc) == ['chaos_report: PASS - 1 experiment, 1 passed, 0 violated SLOs | report: %s'
                                   % (tmp_path / 'reports' / 'chaos_report.md')]


def test_check_mode_writes_dry_run_report(tmp_path):
    proc = run_records(tmp_path, '--check', '-e', 'chaos_fail_on_violation=true')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markdown, results, _junit = read_reports(tmp_path / 'reports')
    assert '> **DRY RUN** (`--check`)' in markdown
    assert '**Verdict: DRY RUN**' in markdown
    assert results['run']['check_mode'] is True
    assert results['summary']['verdict'] == 'DRY RUN'


def run_verdict(tmp_path, *args, env=None):
    """Publish records and judge the run with the chaos_suite role, the chaos_report callback and,
    listed after it, ansible.posix.timer (it prints its line from the final stats event too)."""
    return run_records(tmp_path, *args, playbook=VERDICT_PLAYBOOK, env=dict(
        {'ANSIBLE_CALLBACKS_ENABLED': 'magsasa.chaos.chaos_report,ansible.posix.timer'}, **(env or {})))


def timer_lines(proc):
    return [line for line in proc.stdout.splitlines() if line.startswith('Playbook run took')]


@pytest.mark.parametrize('how', ['env', 'extra_var'])
def test_fail_on_violation_fails_the_run_with_one_line_summary(tmp_path, how):
    if how == 'env':
        proc = run_verdict(tmp_path, '-e', 'report_set=violations', env={'CHAOS_FAIL_ON_VIOLATION': 'true'})
    else:
        proc = run_verdict(tmp_path, '-e', 'report_set=violations', '-e', 'chaos_fail_on_violation=true')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'PLAY RECAP' in proc.stdout
    assert 'chaos: 1 experiment(s) failed the run: %s: FAIL' % MEMORY_NAME_RAW in proc.stdout
    lines = summary_lines(proc)
    assert len(lines) == 1
    assert lines[0].startswith('chaos_report: FAIL - 3 experiments, 1 passed, 1 violated SLOs, 1 skipped')
    assert 'Medium Memory Stress' in lines[0] and 'error_rate_percent 12 %' in lines[0]
    markdown, results, _junit = read_reports(tmp_path / 'reports')
    assert results['summary']['verdict'] == 'FAIL' and '**Verdict: FAIL**' in markdown
    # the callback listed after ours got the final stats event too
    assert len(timer_lines(proc)) == 1, proc.stdout[-2000:]


def test_extra_var_false_overrides_the_environment(tmp_path):
    proc = run_verdict(tmp_path, '-e', 'report_set=violations', '-e', 'chaos_fail_on_violation=false',
                       env={'CHAOS_FAIL_ON_VIOLATION': 'true'})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary_lines(proc)[0].startswith('chaos_report: FAIL')
    assert len(timer_lines(proc)) == 1


def test_violations_pass_the_run_unless_asked(tmp_path):
    proc = run_verdict(tmp_path, '-e', 'report_set=violations')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary_lines(proc)[0].startswith('chaos_report: FAIL')


def test_an_experiment_that_could_not_be_carried_out_always_fails_the_run(tmp_path):
    proc = run_verdict(tmp_path, '-e', 'report_set=errored', '-e', 'chaos_fail_on_violation=false')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "chaos: 1 experiment(s) failed the run: Process Crash: ERROR - chaos_process: no process matched" \
        in proc.stdout
    assert summary_lines(proc)[0].startswith('chaos_report: FAIL') and len(timer_lines(proc)) == 1


def test_a_non_boolean_fail_on_violation_is_refused_by_name(tmp_path):
    proc = run_verdict(tmp_path, '-e', 'report_set=passing', env={'CHAOS_FAIL_ON_VIOLATION': 'sometimes'})
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert 'chaos_suite_fail_on_violation' in proc.stdout and 'sometimes' in proc.stdout, proc.stdout[-2000:]


def test_user_template_replaces_the_default(tmp_path):
    template = tmp_path / 'ours.md.j2'
    template.write_text('# Team report: {{ report.verdict }}\n'
                        '{% for e in report.experiments %}- {{ e.name }}: {{ e.outcome }}\n{% endfor %}')
    proc = run_records(tmp_path, '-e', 'report_set=violations', env={'CHAOS_REPORT_TEMPLATE': str(template)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markdown = (tmp_path / 'reports' / 'chaos_report.md').read_text()
    assert markdown == ('# Team report: FAIL\n'
                        '- Light CPU Stress: PASS\n'
                        '- %s: FAIL\n'
                        '- Database Downtime (light): SKIPPED\n' % MEMORY_NAME_ESCAPED)


def test_broken_user_template_warns_and_falls_back(tmp_path):
    template = tmp_path / 'broken.md.j2'
    template.write_text('{% for e in report.experiments %}never closed')
    proc = run_records(tmp_path, env={'CHAOS_REPORT_TEMPLATE': str(template)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'could not be rendered' in proc.stdout + proc.stderr
    assert '**Verdict: PASS**' in (tmp_path / 'reports' / 'chaos_report.md').read_text()


def test_ini_options_relative_to_the_config_file(tmp_path):
    config_dir = tmp_path / 'project'
    config_dir.mkdir()
    config = config_dir / 'ansible.cfg'
    config.write_text('[defaults]\n'
                      'callbacks_enabled = magsasa.chaos.chaos_report\n'
                      '[callback_chaos_report]\n'
                      'output_dir = out/chaos\n'
                      'formats = junit\n')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = {'CHAOS_REPORT_OUTPUT_DIR': None}  # only the ini setting
    proc = run_records(tmp_path, '-e', 'report_set=violations', config=config, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the callback never sets the exit status
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*') if p.is_file()
                     and 'ansible-tmp' not in p.parts and p.suffix != '.j2')
    assert [w for w in written if '/history/' not in w] == ['project/ansible.cfg', 'project/out/chaos/junit.xml']
    assert len([w for w in written if w.startswith('project/out/chaos/history/')]) == 1  # the history follows output_dir
    junit = ET.parse(str(config_dir / 'out' / 'chaos' / 'junit.xml')).getroot()
    assert (junit.get('tests'), junit.get('failures'), junit.get('skipped')) == ('3', '1', '1')


def test_several_playbooks_give_one_summary_and_all_records(tmp_path):
    proc = run_records(tmp_path, str(PLAYBOOK), '-e', 'report_set=violations', '-e', 'report_result_record=true',
                       env={'CHAOS_FAIL_ON_VIOLATION': 'true'})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the callback never sets the exit status
    assert proc.stdout.count('PLAY RECAP') == 2
    assert len(summary_lines(proc)) == 1
    results = json.loads((tmp_path / 'reports' / 'chaos_results.json').read_text())
    assert results['run']['playbooks'] == ['tests/playbooks/report_records.yml'] * 2
    assert results['summary']['counts']['total'] == 4


@pytest.mark.parametrize('write_empty, files', [(None, []), ('true', ['chaos_report.md', 'chaos_results.json', 'junit.xml'])])
def test_run_without_records_keeps_the_last_report_unless_asked(tmp_path, write_empty, files):
    proc = run_records(tmp_path, '-e', 'report_set=none', env={'CHAOS_REPORT_WRITE_EMPTY': write_empty})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = tmp_path / 'reports'
    written = sorted(p.name for p in reports.iterdir()) if reports.exists() else []
    assert written == files
    if files:
        assert '**Verdict: NO EXPERIMENTS**' in (reports / 'chaos_report.md').read_text()
        assert summary_lines(proc) == ['chaos_report: NO EXPERIMENTS - 0 experiments, 0 passed, 0 violated SLOs'
                                       ' | report: %s' % (reports / 'chaos_report.md')]
    else:
        assert summary_lines(proc) == []
