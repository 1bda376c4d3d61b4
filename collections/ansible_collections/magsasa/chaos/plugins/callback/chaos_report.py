# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

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
  - The Markdown is rendered from a Jinja2 template; O(template) replaces the one shipped in
    the collection. Hostnames, scenario names, reasons and other strings from the run are
    escaped for Markdown tables, HTML and mermaid, and keys that look secret (password, token,
    secret, webhook, API key, credential) are removed from every record before anything is written.
  - Under C(--check) the report carries a dry-run banner and the verdict C(DRY RUN).
  - At the end of the run one summary line is printed (verdict, counts, violations, report path).
requirements:
  - Enable it in ansible.cfg (C(callbacks_enabled = magsasa.chaos.chaos_report) under C([defaults]))
    or with E(ANSIBLE_CALLBACKS_ENABLED).
author:
  - magsasa.chaos maintainers (@magsasa)
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
  fail_on_violation:
    description:
      - Make C(ansible-playbook) exit non-zero when any experiment violated its SLOs, was aborted
        by a stop condition, or failed.
      - The extra variable C(chaos_fail_on_violation) (C(-e chaos_fail_on_violation=true)), when given,
        overrides this option for the run.
      - The callback ends the run from its C(v2_playbook_on_stats) handler with exit status 2
        (4 when hosts were unreachable), after the reports are written and the summary line is
        printed. Callbacks listed after this one in C(callbacks_enabled) do not receive the final
        stats event on such a run, so list this callback last.
    type: bool
    default: false
    env:
      - name: CHAOS_FAIL_ON_VIOLATION
    ini:
      - section: callback_chaos_report
        key: fail_on_violation
  ship_to:
    description:
      - Where to copy the report files at the end of the run, so they outlive the machine that ran it
        (an AWX job's container, a CI runner). Each entry is a directory (or C(file://) URL), an
        C(s3://bucket/prefix) of an S3-compatible store (needs C(boto3) on the controller), or an
        C(http://) / C(https://) URL that receives each file by O(ship_http_method) at C(<url>/<run id>/<file>).
      - Files go under a C(chaos-<start time>) directory or key prefix per run.
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
# fail_on_violation = true
# ship_to = /srv/chaos-reports, https://reports.example.com/chaos

# A task that publishes an experiment record the way the chaos_experiment role does
- name: Publish the experiment record
  ansible.builtin.set_stats:
    data:
      chaos_experiments:
        - "{{ chaos_experiment_record }}"
    aggregate: true
    per_host: false
'''

import json
import os
import sys
import time
from collections.abc import Mapping

from ansible import context
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ansible_version

from ansible_collections.magsasa.chaos.plugins.plugin_utils._report import (
    build_report,
    load_default_template,
    one_line_summary,
    render_json,
    render_junit,
    render_markdown,
)
from ansible_collections.magsasa.chaos.plugins.plugin_utils._ship import run_id, ship

STATS_KEY = 'chaos_experiments'
RESULT_KEY = 'chaos_experiment'
FILE_NAMES = {'markdown': 'chaos_report.md', 'json': 'chaos_results.json', 'junit': 'junit.xml'}
EXIT_FAILED = 2
EXIT_UNREACHABLE = 4


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
        self._fail_override = None
        self._ship_override = None

    # -- collecting -------------------------------------------------------------------

    def _add_record(self, record):
        if not isinstance(record, Mapping):
            return
        record = to_plain(record)
        identity = record_identity(record)
        if identity in self._seen:
            return
        self._seen.add(identity)
        self._records.append(record)

    def _collect_result(self, result):
        payload = result.result
        self._add_record(payload.get(RESULT_KEY))
        for item in payload.get('results') or []:
            if isinstance(item, Mapping):
                self._add_record(item.get(RESULT_KEY))

    def v2_playbook_on_start(self, playbook):
        self._playbooks.append(os.path.relpath(os.path.abspath(playbook._file_name)))

    def v2_playbook_on_play_start(self, play):
        extra_vars = play.get_variable_manager().extra_vars
        if 'chaos_fail_on_violation' in extra_vars:
            try:
                self._fail_override = boolean(extra_vars['chaos_fail_on_violation'], strict=True)
            except TypeError:
                self._display.warning('chaos_report: chaos_fail_on_violation must be a boolean, got %r; '
                                      'using the fail_on_violation option' % (extra_vars['chaos_fail_on_violation'],))
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

    @staticmethod
    def _write(path, text):
        temp_path = '%s.tmp.%d' % (path, os.getpid())
        with open(temp_path, 'w', encoding='utf-8') as output:
            output.write(text)
        os.replace(temp_path, path)

    def _should_fail(self):
        if self._fail_override is not None:
            return self._fail_override
        return bool(self.get_option('fail_on_violation'))

    def _ship(self, written, report):
        destinations = self._ship_override if self._ship_override is not None else self.get_option('ship_to')
        if not destinations or not written:
            return
        outcomes = ship(sorted(written.values()), destinations, run_id(report['run'].get('started_at')),
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

        if not self._records and not self.get_option('write_empty'):
            self._display.vv('chaos_report: no experiment records in this run; no report written')
            return
        report = build_report(self._records, self._run_metadata(time.time()), title=self.get_option('title'))
        output_dir = self.get_option('output_dir')
        renderers = {'markdown': self._markdown, 'json': render_json, 'junit': render_junit}
        written = {}
        try:
            os.makedirs(output_dir, exist_ok=True)
            for fmt in self.get_option('formats'):
                path = os.path.join(output_dir, FILE_NAMES[fmt])
                self._write(path, renderers[fmt](report))
                written[fmt] = path
        except (OSError, KeyError) as ex:
            self._display.error('chaos_report: could not write the report to %s: %s' % (output_dir, ex))

        # With several playbooks this runs once per playbook; summarise (and fail) only at the
        # end of the run: after the last playbook, or when failed hosts stop ansible-playbook here.
        last_playbook = len(self._playbooks) >= len(context.CLIARGS.get('args') or ())
        if not (last_playbook or stats.failures or stats.dark):
            return
        self._ship(written, report)
        main_file = written.get('markdown') or written.get('json') or written.get('junit')
        failing = report['verdict'] == 'FAIL'
        self._display.display(one_line_summary(report, main_file), color='bright red' if failing else 'bright green',
                              stderr=failing)
        if failing and self._should_fail():
            # A callback has no return value that reaches the exit status: raising an exception
            # is only turned into a warning by the callback dispatcher, but SystemExit is not
            # an Exception, so it ends ansible-playbook with our status once the reports exist.
            raise SystemExit(EXIT_UNREACHABLE if stats.dark else EXIT_FAILED)
