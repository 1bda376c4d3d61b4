# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):

    # The Prometheus export of the chaos_report callback (plugins/plugin_utils/_prometheus.py).
    DOCUMENTATION = r'''
options:
  prometheus_textfile:
    description:
      - Write the run's metrics in the Prometheus text format to this file, for the node exporter's textfile
        collector (its name must end in C(.prom) for the collector to read it).
      - The file is written to a temporary file beside it and renamed, so a scrape never reads half a file.
      - Metrics per experiment, labelled C(scenario), C(type), C(intensity) and C(environment)
        C(chaos_mttr_seconds), C(chaos_error_rate_percent), C(chaos_availability_percent),
        C(chaos_latency_degradation_ms), C(chaos_recovery_seconds), C(chaos_resilience_score),
        C(chaos_slo_pass) (1 or 0; violations declared as expected do not count), C(chaos_experiment_duration_seconds); per outcome and environment
        C(chaos_experiments_total); and C(chaos_run_start_timestamp_seconds), C(chaos_run_end_timestamp_seconds).
        A metric an experiment has no value for (no outage, so no MTTR; never recovered) is left out.
      - Not written under C(--check).
    type: path
    env:
      - name: CHAOS_PROMETHEUS_TEXTFILE
    ini:
      - section: callback_chaos_report
        key: prometheus_textfile
  prometheus_target_labels:
    description:
      - Add a C(targets) label (the experiment's target hosts, comma-separated) to the per-experiment metrics.
      - Off by default, so host names of the targets do not reach Prometheus unless asked for.
    type: bool
    default: false
    env:
      - name: CHAOS_PROMETHEUS_TARGET_LABELS
    ini:
      - section: callback_chaos_report
        key: prometheus_target_labels
  pushgateway_url:
    description:
      - Push the same metrics to this Prometheus Pushgateway at the end of the run (HTTP PUT, which replaces
        the metrics of the job and grouping key).
      - A push that fails is reported as an error and the run goes on, unless O(pushgateway_required) is set.
      - Not pushed under C(--check), so a dry run does not replace the last real run's metrics.
    type: str
    env:
      - name: CHAOS_PUSHGATEWAY_URL
    ini:
      - section: callback_chaos_report
        key: pushgateway_url
  pushgateway_job:
    description: The C(job) label of the pushed group.
    type: str
    default: magsasa_chaos
    env:
      - name: CHAOS_PUSHGATEWAY_JOB
    ini:
      - section: callback_chaos_report
        key: pushgateway_job
  pushgateway_grouping_key:
    description:
      - Extra grouping-key labels of the pushed group, as C(label=value) items (comma-separated in the
        environment variable or C(ansible.cfg)), for example V(environment=staging,team=sre).
    type: list
    elements: str
    default: []
    env:
      - name: CHAOS_PUSHGATEWAY_GROUPING_KEY
    ini:
      - section: callback_chaos_report
        key: pushgateway_grouping_key
  pushgateway_timeout:
    description: Seconds the push may take.
    type: float
    default: 10
    env:
      - name: CHAOS_PUSHGATEWAY_TIMEOUT
    ini:
      - section: callback_chaos_report
        key: pushgateway_timeout
  pushgateway_username:
    description: User name for HTTP basic authentication at the Pushgateway (with O(pushgateway_password)).
    type: str
    env:
      - name: CHAOS_PUSHGATEWAY_USERNAME
  pushgateway_password:
    description:
      - Password for HTTP basic authentication at the Pushgateway. Read from the environment only and never printed.
    type: str
    env:
      - name: CHAOS_PUSHGATEWAY_PASSWORD
  pushgateway_token:
    description:
      - Bearer token sent to the Pushgateway (instead of basic authentication). Read from the environment only and
        never printed.
    type: str
    env:
      - name: CHAOS_PUSHGATEWAY_TOKEN
  pushgateway_required:
    description:
      - Make the run fail (C(ansible-playbook) exits with status 2) when the push to the Pushgateway fails.
      - The push then happens in a task, the M(magsasa.chaos.chaos_pushgateway) step at the end of the
        C(chaos_suite) role's verdict (run once, on the controller), which fails naming the Pushgateway's URL;
        the callback does not push again, and its textfile gets the same run start and end times.
      - The callback never ends the process itself. In a run without that task (a playbook that does not
        end with the C(chaos_suite) role's verdict) the callback pushes at the end and a failure is an
        error message only.
      - The reports are written either way.
    type: bool
    default: false
    env:
      - name: CHAOS_PUSHGATEWAY_REQUIRED
    ini:
      - section: callback_chaos_report
        key: pushgateway_required
'''
