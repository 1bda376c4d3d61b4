#!/usr/bin/env bash
# The second half of `make demo`: run the smoke chaos suite against the demo target that
# playbooks/demo_up.yml started, then print where the report is and what it concluded.
# The verdict is read from the report files the chaos_report callback wrote, never assumed.
# Arguments go to ansible-playbook (.ci/chaos passes the scenario or intensity and
# fail-on-violation); CHAOS_INVENTORY runs against another inventory.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
group="${CHAOS_GROUP:-smoke_test}"
reports="${CHAOS_REPORT_DIR:-reports}"
rm -f "$reports/chaos_report.md" "$reports/chaos_results.json" "$reports/junit.xml"

.venv/bin/ansible-playbook playbooks/chaos.yml -i "${CHAOS_INVENTORY:-inventories/local}" -e "chaos_group=$group" "$@"
rc=$?

if [ ! -s "$reports/chaos_report.md" ] || [ ! -s "$reports/chaos_results.json" ]; then
  echo "make demo: the chaos run wrote no report (ansible-playbook exit $rc); see the output above." >&2
  exit 1
fi
.venv/bin/python - "$reports/chaos_results.json" "$reports/chaos_report.md" "$rc" <<'PY'
import json, sys
results_path, report_path, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(results_path))
records = data.get('experiments', [])
counts = {}
for record in records:
    key = record.get('status')
    if key == 'completed':
        key = 'SLO ' + ((record.get('slo') or {}).get('verdict') or 'n/a')
    counts[key] = counts.get(key, 0) + 1
verdict = data['summary']['verdict']
print()
print('Chaos report: %s' % report_path)
print('Verdict: %s  (%s)' % (str(verdict).upper(), ', '.join('%d %s' % (n, k) for k, n in sorted(counts.items()))))
for record in records:
    slo = record.get('slo') or {}
    missed = [c for c in slo.get('checks', []) if not c.get('passed')]
    failed = [c['metric'] for c in missed if not c.get('expected')]
    # a miss the scenario declares expected (a crash costs availability) does not fail its SLO
    expected = [c['metric'] for c in missed if c.get('expected')]
    line = '  - %-28s %-9s' % (record.get('name'), record.get('status'))
    if slo.get('verdict'):
        line += ' SLO %s' % slo['verdict'].upper()
    if failed:
        line += ' (violated: %s)' % ', '.join(failed)
    if expected:
        line += ' (expected misses: %s)' % ', '.join(expected)
    if record.get('reason') and record.get('status') != 'completed':
        line += ' - %s' % record['reason']
    print(line)
completed = [r for r in records if r.get('status') in ('completed', 'aborted')]
if not completed:
    print('No experiment ran to completion: the demo did NOT exercise any fault.', file=sys.stderr)
    sys.exit(1)
if rc != 0:
    print('ansible-playbook exited %d' % rc, file=sys.stderr)
    sys.exit(rc)
PY
