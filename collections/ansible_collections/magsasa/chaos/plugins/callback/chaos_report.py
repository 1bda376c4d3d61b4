# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
name: chaos_report
type: aggregate
short_description: Write the chaos experiment report (Markdown, JSON, JUnit XML) at the end of a run
description:
  - Collects every chaos experiment record of the run and writes C(chaos_report.md),
    C(chaos_results.json) and C(junit.xml) into O(output_dir) when the playbook ends.
  - Records come from the custom stats key C(chaos_experiments), published by the
    C(chaos_experiment) role with M(ansible.builtin.set_stats) (C(aggregate=true), C(per_host=false)
    or per host), and from any task result that carries a top-level C(chaos_experiment) dictionary.
    The same record seen twice (several hosts, stats and task result) is reported once.
  - Breaking-point searches (the C(chaos_breaking_points) stats key of the C(chaos_breaking_point) role)
    get a "Breaking point" section appended to the Markdown and a C(breaking_points) list in the JSON.
  - The Markdown is rendered from a Jinja2 template; O(template) replaces the one shipped in
    the collection. Hostnames, scenario names, reasons and other strings from the run are
    escaped for Markdown tables, HTML and mermaid, and keys that look secret (password, token,
    secret, webhook, API key, credential) are removed from every record before anything is written.
  - Under C(--check) the report carries a dry-run banner and the verdict C(DRY RUN).
  - At the end of the run one summary line is printed (verdict, counts, violations, report path).
  - The callback does not decide the exit status of C(ansible-playbook) and never ends the run itself
    (callbacks listed after it still get every event). The C(chaos_suite) role fails the run when an
    experiment could not be carried out, and, with C(chaos_fail_on_violation), when one violated its
    SLOs or was aborted. With O(pushgateway_required), the C(chaos_suite) role's verdict pushes the metrics
    from a task (M(magsasa.chaos.chaos_pushgateway)), which fails the run when the push fails.
requirements:
  - Enable it in ansible.cfg (C(callbacks_enabled = magsasa.chaos.chaos_report) under C([defaults]))
    or with E(ANSIBLE_CALLBACKS_ENABLED).
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.prometheus_export
options:
  output_dir:
    description:
      - Directory the report files are written to; it is created when missing.
      - A relative path set in C(ansible.cfg) is relative to the directory of that C(ansible.cfg)
        (the usual rule for Ansible path settings); a relative path from the environment variable or
        the default is relative to the current working directory of C(ansible-playbook).
    type: path
    default: reports
    env:
      - name: CHAOS_REPORT_OUTPUT_DIR
    ini:
      - section: callback_chaos_report
        key: output_dir
  formats:
    description:
      - Which files to write. C(markdown) is C(chaos_report.md), C(json) is C(chaos_results.json)
        (run metadata, summary and the full records), C(junit) is C(junit.xml).
    type: list
    elements: str
    choices: [markdown, json, junit]
    default: [markdown, json, junit]
    env:
      - name: CHAOS_REPORT_FORMATS
    ini:
      - section: callback_chaos_report
        key: formats
  template:
    description:
      - Path to a Jinja2 template that replaces the default C(chaos_report.md) template
        (C(plugins/plugin_utils/templates/chaos_report.md.j2) in the collection is a good start).
      - The template gets the view model as C(report); every expression is escaped for Markdown
        unless passed through the C(safe) filter.
      - When the template cannot be read or rendered, a warning names the error and the default
        template is used, so a report is always written.
    type: path
    env:
      - name: CHAOS_REPORT_TEMPLATE
    ini:
      - section: callback_chaos_report
        key: template
  title:
    description: First heading of the Markdown report.
    type: str
    default: Chaos experiment report
    env:
      - name: CHAOS_REPORT_TITLE
    ini:
      - section: callback_chaos_report
        key: title
  write_empty:
    description:
      - Also write the files when the run published no experiment record.
      - Off by default so that playbooks without experiments (demo set-up, C(halt.yml)) run with
        the callback enabled do not replace the last chaos report with an empty one.
    type: bool
    default: false
    env:
      - name: CHAOS_REPORT_WRITE_EMPTY
    ini:
      - section: callback_chaos_report
        key: write_empty
  history_dir:
    description:
      - Directory of the run history. Every run that measured something (not C(--check), not only
        skipped experiments) leaves one JSON file there, named by its start time, and the report's
        C(Trend) section compares each scenario with its earlier runs from these files.
      - Defaults to C(history) inside O(output_dir). Relative paths follow the rule of O(output_dir).
      - When the directory cannot be created or written, a warning names it and the error; the
        report is still written (its trend then lacks this run in later reports).
      - A file in it that is not a history file of this callback (not JSON, another schema) is
        skipped with a warning naming it.
    type: path
    env:
      - name: CHAOS_REPORT_HISTORY_DIR
    ini:
      - section: callback_chaos_report
        key: history_dir
  history_keep:
    description:
      - How many runs the history keeps; the oldest files beyond this count are removed after each
        run. C(0) turns the history and the C(Trend) section off.
    type: int
    default: 50
    env:
      - name: CHAOS_REPORT_HISTORY_KEEP
    ini:
      - section: callback_chaos_report
        key: history_keep
  trend_runs:
    description: How many runs of each scenario (this one included) the C(Trend) section shows.
    type: int
    default: 10
    env:
      - name: CHAOS_REPORT_TREND_RUNS
    ini:
      - section: callback_chaos_report
        key: trend_runs
  trend_score_tolerance:
    description:
      - A scenario whose resilience score fell by more than this many points since its previous run
        is called out in the C(Trend) section (as is one whose verdict left PASS).
    type: float
    default: 5
    env:
      - name: CHAOS_REPORT_TREND_SCORE_TOLERANCE
    ini:
      - section: callback_chaos_report
        key: trend_score_tolerance
  trend_mttr_tolerance_percent:
    description:
      - A scenario whose MTTR rose by more than this percentage of its previous run's MTTR (and by at
        least half a second) is called out in the C(Trend) section. A run without failed samples
        counts as an MTTR of 0.
    type: float
    default: 20
    env:
      - name: CHAOS_REPORT_TREND_MTTR_TOLERANCE_PERCENT
    ini:
      - section: callback_chaos_report
        key: trend_mttr_tolerance_percent
  notify_webhook_format:
    description:
      - Body shape of the generic webhook (E(CHAOS_NOTIFY_WEBHOOK_URL) or the variable C(chaos_notify_webhook_url)),
        C(generic) JSON with every field, C(mattermost) or C(teams) (a connector card).
      - The variable C(chaos_notify_webhook_format) of the play, when set, wins.
    type: str
    choices: [generic, mattermost, teams]
    default: generic
    env:
      - name: CHAOS_NOTIFY_WEBHOOK_FORMAT
    ini:
      - section: callback_chaos_report
        key: notify_webhook_format
  notify_timeout:
    description: Seconds to wait for a webhook to answer.
    type: int
    default: 10
    env:
      - name: CHAOS_NOTIFY_TIMEOUT
    ini:
      - section: callback_chaos_report
        key: notify_timeout
  report_url:
    description:
      - Where people can read the report (a CI artifact or a wiki page); the finish notification links it.
        Without it the notification names the path of C(chaos_report.md) on the controller.
    type: str
    env:
      - name: CHAOS_REPORT_URL
    ini:
      - section: callback_chaos_report
        key: report_url
  ship_to:
    description:
      - Where to copy the report files at the end of the run, so they outlive the machine that ran it
        (an AWX job's container, a CI runner). Each entry is a directory (or C(file://) URL), an
        C(s3://bucket/prefix) of an S3-compatible store (needs C(boto3) on the controller), or an
        C(http://) / C(https://) URL that receives each file by O(ship_http_method) at C(<url>/<run id>/<file>).
      - Files go under a C(chaos-<run id>) directory or key prefix per run, the run id being the one its run history
        entry is named by (UTC start time and a random token).
      - The extra variable C(chaos_report_ship_to) (a list, or one string), when given, overrides this option for the run.
      - A destination that fails prints a warning naming it and the reason; the others are still tried and the run's
        result does not change. The summary also stays in the C(chaos_experiments) stats (AWX job artifacts).
    type: list
    elements: str
    default: []
    env:
      - name: CHAOS_REPORT_SHIP_TO
    ini:
      - section: callback_chaos_report
        key: ship_to
  ship_http_method:
    description: The HTTP method that sends each file to an HTTP destination.
    type: str
    choices: [PUT, POST]
    default: PUT
    env:
      - name: CHAOS_REPORT_SHIP_HTTP_METHOD
    ini:
      - section: callback_chaos_report
        key: ship_http_method
  ship_http_token:
    description:
      - A bearer token sent to HTTP destinations (C(Authorization) header). User and password in the URL are sent as
        basic authentication instead. Neither is ever printed.
    type: str
    env:
      - name: CHAOS_REPORT_SHIP_HTTP_TOKEN
  ship_s3_endpoint_url:
    description:
      - The endpoint of an S3-compatible store (MinIO, Ceph RGW); AWS S3 when unset. Credentials and region come from
        the usual AWS environment variables or configuration files.
    type: str
    env:
      - name: CHAOS_REPORT_SHIP_S3_ENDPOINT_URL
    ini:
      - section: callback_chaos_report
        key: ship_s3_endpoint_url
notes:
  - The run's check mode, playbooks, inventory sources, start and end time are recorded in
    C(chaos_results.json) (C(run)) and the Markdown summary.
  - With several playbooks on one command line the files are rewritten after each playbook and
    the last write holds every record of the run.
  - Notifications. When a Slack incoming webhook (variable C(chaos_notify_slack_webhook) or E(CHAOS_NOTIFY_SLACK_WEBHOOK))
    or a JSON webhook (C(chaos_notify_webhook_url) or E(CHAOS_NOTIFY_WEBHOOK_URL)) is set, the callback posts a
    message for every experiment that violated its SLOs, was aborted or failed, as soon as its record is
    published, and one after the run with the verdict and the report's location. The variables are read
    from the play (extra vars, inventory vars, vault-encrypted or not) and win over the environment. The
    C(chaos_suite) role posts the message before the run. A dry run (C(--check)) notifies nobody.
  - A webhook URL is a secret. It is never printed, written to a report or to the run history; a
    notification that cannot be delivered is a warning naming the webhook's host only, and the run goes on.
  - The Prometheus export (O(prometheus_textfile), O(pushgateway_url)) needs the C(prometheus_client) Python
    library on the controller; without it the export is skipped with an error message and the reports are
    still written.
'''

EXAMPLES = r'''
# ansible.cfg
# [defaults]
# callbacks_enabled = magsasa.chaos.chaos_report
#
# [callback_chaos_report]
# output_dir = reports
# formats = markdown, junit
# template = templates/our_chaos_report.md.j2
# ship_to = /srv/chaos-reports, https://reports.example.com/chaos
# prometheus_textfile = /var/lib/prometheus/node-exporter/chaos.prom
# pushgateway_url = http://pushgateway.example.com:9091
# pushgateway_grouping_key = environment=staging

# A task that publishes an experiment record the way the chaos_experiment role does
- name: Publish the experiment record
  ansible.builtin.set_stats:
    data:
      chaos_experiments:
        - "{{ chaos_experiment_record }}"
    aggregate: true
    per_host: false
'''

import binascii
import json
import os
import sys
import time
from collections.abc import Mapping

from ansible import context
from ansible.module_utils.urls import open_url
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar
from ansible.release import __version__ as ansible_version

from ansible_collections.magsasa.chaos.plugins.plugin_utils._notify import (
    describe_url,
    destinations as notify_destinations,
    finish_event,
    payload,
    scrub,
    violation_event,
)
from ansible_collections.magsasa.chaos.plugins.plugin_utils._history import (
    DEFAULT_TOLERANCE,
    build_trend,
    files_to_prune,
    history_entry,
    history_file_name,
    parse_history,
    run_id,
)
from ansible_collections.magsasa.chaos.plugins.plugin_utils._prometheus import EXPORT_OPTIONS, PrometheusExport
from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import (
    build_report,
    load_default_template,
    one_line_summary,
    render_json,
    render_junit,
    render_markdown,
)
from ansible_collections.magsasa.chaos.plugins.plugin_utils._ship import ship
from ansible_collections.magsasa.chaos.plugins.plugin_utils import _breaking_point

STATS_KEY = 'chaos_experiments'
BREAKING_KEY = 'chaos_breaking_points'
NOTIFY_VARS = ('chaos_notify_slack_webhook', 'chaos_notify_webhook_url', 'chaos_notify_webhook_format')
NOTIFY_ENV = {'chaos_notify_slack_webhook': 'CHAOS_NOTIFY_SLACK_WEBHOOK', 'chaos_notify_webhook_url': 'CHAOS_NOTIFY_WEBHOOK_URL'}
RESULT_KEY = 'chaos_experiment'
FILE_NAMES = {'markdown': 'chaos_report.md', 'json': 'chaos_results.json', 'junit': 'junit.xml'}
PUSH_KEY = 'chaos_pushgateway'


def to_plain(value):
    """Copy Ansible's tagged/lazy containers and strings into plain JSON-able Python values."""
    if isinstance(value, Mapping):
        return dict((str(k), to_plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def record_identity(record):
    """Key under which two copies of the same experiment record collapse into one."""
    fault = record.get('fault') if isinstance(record.get('fault'), dict) else {}
    window = record.get('window') if isinstance(record.get('window'), dict) else {}
    anchor = [fault.get('fault_ids'), fault.get('started_at'), window.get('fault_start'), window.get('baseline_start')]
    if not any(anchor):
        return json.dumps(record, sort_keys=True, default=str)
    return json.dumps([record.get('name'), record.get('type'), record.get('environment'),
                       sorted(str(t) for t in (record.get('targets') or [])), record.get('status')] + anchor,
                      sort_keys=True, default=str)


def _iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'magsasa.chaos.chaos_report'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self._records = []
        self._seen = set()
        self._playbooks = []
        self._started = time.time()
        self._run_id = run_id(self._started, binascii.hexlify(os.urandom(4)).decode('ascii'))
        self._notify_vars = {}
        self._task_push = None
        self._ship_override = None

    # -- collecting -------------------------------------------------------------------

    def _add_record(self, record):
        """Keep a record seen for the first time; return it (None when not new)."""
        if not isinstance(record, Mapping):
            return None
        record = to_plain(record)
        identity = record_identity(record)
        if identity in self._seen:
            return None
        self._seen.add(identity)
        self._records.append(record)
        return record

    def _collect_result(self, result):
        result_data = result.result
        if isinstance(result_data.get(PUSH_KEY), Mapping):  # the chaos_pushgateway action pushed already
            self._task_push = to_plain(result_data[PUSH_KEY])
        found = [self._add_record(result_data.get(RESULT_KEY))]
        for item in result_data.get('results') or []:
            if isinstance(item, Mapping):
                found.append(self._add_record(item.get(RESULT_KEY)))
        # set_stats as the chaos_experiment role publishes: seen here as each experiment ends.
        stats = result_data.get('ansible_stats')
        if isinstance(stats, Mapping) and isinstance(stats.get('data'), Mapping):
            for record in stats['data'].get(STATS_KEY) or []:
                found.append(self._add_record(record))
        for record in found:
            if record:
                self._notify_violation(record)

    def v2_playbook_on_start(self, playbook):
        self._playbooks.append(os.path.relpath(os.path.abspath(playbook._file_name)))

    def v2_playbook_on_play_start(self, play):
        self._read_notify_vars(play)
        extra_vars = play.get_variable_manager().extra_vars
        if 'chaos_report_ship_to' in extra_vars:
            ship_to = extra_vars['chaos_report_ship_to']
            self._ship_override = [ship_to] if isinstance(ship_to, str) else list(ship_to or [])

    def v2_runner_on_ok(self, result):
        self._collect_result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._collect_result(result)

    def v2_runner_item_on_ok(self, result):
        self._collect_result(result)

    def v2_runner_item_on_failed(self, result):
        self._collect_result(result)

    # -- writing ----------------------------------------------------------------------

    def _run_metadata(self, ended):
        inventories = context.CLIARGS.get('inventory') or []
        return {
            'playbooks': list(self._playbooks),
            'inventories': [os.path.relpath(i) if os.path.exists(i) else i for i in inventories],
            'check_mode': bool(context.CLIARGS.get('check', False)),
            'started_at': _iso(self._started),
            'ended_at': _iso(ended),
            'duration_seconds': round(ended - self._started, 3),
            'ansible_version': ansible_version,
            'controller_python': '%d.%d.%d' % sys.version_info[:3],
        }

    def _markdown(self, report):
        path = self.get_option('template')
        if path:
            try:
                with open(path, 'r') as template_file:
                    return render_markdown(report, template_file.read())
            except Exception as ex:  # a broken user template must not cost the report
                self._display.warning('chaos_report: template %s could not be rendered (%s: %s); '
                                      'using the default template' % (path, type(ex).__name__, ex))
        return render_markdown(report, load_default_template())

    # -- notifications ----------------------------------------------------------------

    def _read_notify_vars(self, play):
        """The chaos_notify_* variables as the play's first host sees them (extra vars, inventory
        and vault included), so the callback posts to the webhooks the chaos_suite role posts to."""
        manager = play.get_variable_manager()
        try:
            hosts = manager._inventory.get_hosts(play.hosts)
            variables = manager.get_vars(play=play, host=hosts[0] if hosts else None, include_hostvars=False)
            templar = Templar(loader=play._loader, variables=variables)
            for name in NOTIFY_VARS:
                if name in variables:
                    self._notify_vars[name] = to_plain(templar.template(variables[name]))
        except Exception as ex:  # a variable that does not template here only costs the notification
            self._display.warning('chaos_report: could not read the notification settings of play %s (%s); '
                                  'using the environment' % (play.get_name(), type(ex).__name__))

    def _destinations(self):
        def setting(name):
            return self._notify_vars.get(name) or os.environ.get(NOTIFY_ENV.get(name, ''), '')
        try:
            webhook_format = self._notify_vars.get('chaos_notify_webhook_format') or self.get_option('notify_webhook_format')
            return notify_destinations(setting('chaos_notify_slack_webhook'), setting('chaos_notify_webhook_url'), webhook_format)
        except ValueError as ex:
            self._display.warning('chaos_report: no notifications: %s' % ex)
            return []

    def _notify(self, event):
        if context.CLIARGS.get('check', False):
            return
        targets = self._destinations()
        urls = [t['url'] for t in targets]
        for target in targets:
            body = json.dumps(payload(event, target['flavour'])).encode('utf-8')
            try:
                open_url(target['url'], data=body, method='POST', headers={'Content-Type': 'application/json'},
                         timeout=self.get_option('notify_timeout'), follow_redirects='none')
            except Exception as ex:  # any failure to deliver is a warning; the run goes on
                error = scrub('%s: %s' % (type(ex).__name__, ex), urls)
                self._display.warning('chaos_report: the %s notification to the %s webhook at %s was not delivered '
                                      '(%s); the run goes on' % (event['event'], target['name'], describe_url(target['url']), error))

    def _notify_violation(self, record):
        view = build_report([record])['experiments'][0]
        if view['outcome'] in ('FAIL', 'ABORTED', 'ERROR'):
            self._notify(violation_event(view))

    # -- run history --------------------------------------------------------------------

    def _history_dir(self, output_dir):
        return self.get_option('history_dir') or os.path.join(output_dir, 'history')

    def _load_history(self, directory):
        entries = []
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            return entries
        except OSError as ex:
            self._display.warning('chaos_report: cannot read the run history in %s (%s); the trend shows this run only'
                                  % (directory, ex))
            return entries
        for name in names:
            if not name.endswith('.json') or name == history_file_name(self._run_id):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, 'r', encoding='utf-8') as history_file:
                    entries.append(parse_history(history_file.read()))
            except (OSError, UnicodeDecodeError, ValueError) as ex:
                self._display.warning('chaos_report: skipping run history file %s: %s' % (path, ex))
        return entries

    def _add_trend(self, report, output_dir):
        """Put the Trend into the report; return this run's history entry to save (or None)."""
        if self.get_option('history_keep') <= 0:
            return None
        entry = history_entry(report, self._run_id)
        if entry is None:
            return None
        tolerance = dict(DEFAULT_TOLERANCE, score_points=float(self.get_option('trend_score_tolerance')),
                         mttr_percent=float(self.get_option('trend_mttr_tolerance_percent')))
        report['trend'] = build_trend(self._load_history(self._history_dir(output_dir)), entry,
                                      runs=self.get_option('trend_runs'), tolerance=tolerance)
        report['trend_tolerance'] = tolerance
        return entry

    def _save_history(self, entry, output_dir):
        directory = self._history_dir(output_dir)
        try:
            os.makedirs(directory, exist_ok=True)
            self._write(os.path.join(directory, history_file_name(entry['id'])),
                        json.dumps(entry, indent=2, sort_keys=True) + '\n')
            for name in files_to_prune(os.listdir(directory), self.get_option('history_keep')):
                os.remove(os.path.join(directory, name))
        except OSError as ex:
            self._display.warning('chaos_report: could not write the run history to %s (%s); the report was written, '
                                  'but later trends will not show this run' % (directory, ex))

    @staticmethod
    def _write(path, text):
        temp_path = '%s.tmp.%d' % (path, os.getpid())
        with open(temp_path, 'w', encoding='utf-8') as output:
            output.write(text)
        os.replace(temp_path, path)

    def _export_prometheus(self, ended):
        options = dict((name, self.get_option(name)) for name in EXPORT_OPTIONS)
        started = self._started
        if self._task_push:
            # A task pushed (pushgateway_required): no second push; the textfile gets the same times.
            options['pushgateway_url'] = None
            if self._task_push.get('pushed') and self._task_push.get('message'):
                self._display.display(self._task_push['message'])
            started, ended = self._task_push.get('started', started), self._task_push.get('ended', ended)
        messages, push_failed = PrometheusExport(options).export(self._records, started, ended)
        if push_failed and self.get_option('pushgateway_required'):
            messages.append(('error', 'chaos_report: pushgateway_required is set, but no chaos_pushgateway task ran in '
                                      'this run (the chaos_suite role\'s verdict runs one), so the failed push does '
                                      'not change the exit status'))
        for level, text in messages:
            {'info': self._display.display, 'warning': self._display.warning, 'error': self._display.error}[level](text)

    def _ship(self, written, report):
        destinations = self._ship_override if self._ship_override is not None else self.get_option('ship_to')
        if not destinations or not written:
            return
        outcomes = ship(sorted(written.values()), destinations, 'chaos-' + self._run_id,
                        http_method=self.get_option('ship_http_method'), http_token=self.get_option('ship_http_token'),
                        s3_endpoint_url=self.get_option('ship_s3_endpoint_url'))
        for destination, shipped, detail in outcomes:
            if shipped:
                self._display.display('chaos_report: report shipped to %s' % detail)
            else:
                self._display.warning('chaos_report: could not ship the report to %s (%s)' % (destination, detail))

    def v2_playbook_on_stats(self, stats):
        for host_stats in (stats.custom or {}).values():
            for record in (host_stats or {}).get(STATS_KEY) or []:
                self._add_record(record)
        searches = [to_plain(e) for h in (stats.custom or {}).values() for e in (h or {}).get(BREAKING_KEY) or []]

        if not self._records and not self.get_option('write_empty'):
            self._display.vv('chaos_report: no experiment records in this run; no report written')
            return
        ended = time.time()
        report = build_report(self._records, self._run_metadata(ended), title=self.get_option('title'))
        output_dir = self.get_option('output_dir')
        history = self._add_trend(report, output_dir)
        renderers = {'markdown': lambda r: self._markdown(r) + _breaking_point.render_all(searches),
                     'json': lambda r: _breaking_point.add_to_json(render_json(r), searches), 'junit': render_junit}
        written = {}
        try:
            os.makedirs(output_dir, exist_ok=True)
            for fmt in self.get_option('formats'):
                path = os.path.join(output_dir, FILE_NAMES[fmt])
                self._write(path, renderers[fmt](report))
                written[fmt] = path
        except (OSError, KeyError) as ex:
            self._display.error('chaos_report: could not write the report to %s: %s' % (output_dir, ex))
        if history:
            self._save_history(history, output_dir)
        if not report['run']['check_mode']:
            self._export_prometheus(ended)

        # With several playbooks this runs once per playbook; summarise only at the end of the
        # run: after the last playbook, or when failed hosts stop ansible-playbook here.
        last_playbook = len(self._playbooks) >= len(context.CLIARGS.get('args') or ())
        if not (last_playbook or stats.failures or stats.dark):
            return
        self._ship(written, report)
        main_file = written.get('markdown') or written.get('json') or written.get('junit')
        self._notify(finish_event(report, self.get_option('report_url') or (os.path.abspath(main_file) if main_file else None)))
        failing = report['verdict'] == 'FAIL'
        self._display.display(one_line_summary(report, main_file), color='bright red' if failing else 'bright green',
                              stderr=failing)
