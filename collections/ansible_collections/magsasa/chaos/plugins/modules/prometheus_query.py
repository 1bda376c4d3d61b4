#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: prometheus_query
short_description: Judge PromQL steady-state checks and stop conditions against a Prometheus HTTP API
version_added: 0.1.0
description:
  - Evaluates each check's PromQL expression as an instant query (C(/api/v1/query)) and compares every returned
    series with the check's O(checks[].op) and O(checks[].threshold).
  - With O(purpose=steady_state) every check must hold for every series (and return at least one) before a fault is
    injected. With O(purpose=stop_condition) a check that holds for any series breaches, and the experiment ends the
    fault early.
  - Without O(checks[].op) and O(checks[].threshold) the expression is the condition itself, since PromQL
    comparisons filter; V(up{job="api"} == 0) returns a series exactly while an instance is down.
  - An expression Prometheus rejects, a range-vector result, or a Prometheus that cannot be reached fails the task
    with a message that names the expression or the URL.
  - Every evaluation is returned as RV(samples), so an experiment can keep the value series beside its probe's.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.probe
options:
  url:
    description:
      - Base URL of the Prometheus HTTP API, for example V(http://prometheus.example.com:9090); the module appends
        C(/api/v1/query). A path prefix (a reverse proxy, Thanos, Mimir's C(/prometheus)) is kept.
    type: str
    required: true
  checks:
    description: The checks to evaluate, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A name for reports and messages (default the query).
        type: str
      query:
        description: The PromQL expression, evaluated as an instant query.
        type: str
        required: true
      op:
        description: How each series' value is compared with O(checks[].threshold).
        type: str
        choices: ['>', '>=', '<', '<=', '==', '!=']
      threshold:
        description: The number each series' value is compared with.
        type: float
  purpose:
    description:
      - V(steady_state) - RV(passed) is true when every check holds.
      - V(stop_condition) - RV(breached) is true when any check holds.
    type: str
    choices: [steady_state, stop_condition]
    default: steady_state
  headers:
    description:
      - Extra HTTP headers, for example C(Authorization) with a bearer token or C(X-Scope-OrgID) for a multi-tenant
        backend. Treated as secret (C(no_log)).
    type: dict
    default: {}
  timeout:
    description: Seconds a query may take. Must be greater than 0.
    type: float
    default: 5
  validate_certs:
    description: Verify the TLS certificate of an C(https://) URL.
    type: bool
    default: true
notes:
  - The inventories of this project name checks in C(chaos_steady_state.prometheus) and C(chaos_abort.prometheus),
    with the URL in C(chaos_prometheus_url); the C(chaos_experiment) role runs this module before injecting and at
    every hold tick.
seealso:
  - module: magsasa.chaos.resilience_probe
"""

EXAMPLES = r"""
- name: The error ratio must be low before we break anything
  magsasa.chaos.prometheus_query:
    url: http://127.0.0.1:9090
    checks:
      - name: API error ratio
        query: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
        op: "<"
        threshold: 0.01
  delegate_to: localhost
  register: chaos_prometheus_steady

- name: Abort when more than 5 % of requests fail
  magsasa.chaos.prometheus_query:
    url: http://127.0.0.1:9090
    purpose: stop_condition
    checks:
      - query: sum(rate(http_requests_total{code=~"5.."}[30s])) / sum(rate(http_requests_total[30s])) > 0.05
  delegate_to: localhost
  register: chaos_prometheus_abort
"""

RETURN = r"""
passed:
  description: Whether the steady state holds (V(steady_state)) or no stop condition is breached (V(stop_condition)).
  returned: always
  type: bool
  sample: true
breached:
  description: Whether any stop condition holds (always false with O(purpose=steady_state)).
  returned: always
  type: bool
  sample: false
reasons:
  description: Why the steady state does not hold, or which stop condition was breached, with the value.
  returned: always
  type: list
  elements: str
  sample: ["PromQL stop condition 'error ratio': sum(rate(...)) / sum(rate(...)) is 0.31, > 0.05"]
results:
  description: One entry per check, in order.
  returned: always
  type: list
  elements: dict
  sample:
    - name: error ratio
      query: sum(rate(errors_total[30s])) / sum(rate(requests_total[30s]))
      op: ">"
      threshold: 0.05
      holds: false
      ok: true
      value: 0.0
      values: [{labels: {}, value: 0.0}]
      reason: ""
samples:
  description: One sample per check for the experiment's record, C(at) in epoch seconds.
  returned: always
  type: list
  elements: dict
  sample: [{at: 1764440003.2, name: error ratio, value: 0.0, holds: false, purpose: stop_condition}]
"""

import re
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.magsasa.chaos.plugins.module_utils._promql import COMPARISONS, PromQLError, evaluate_checks


class PrometheusQuery:
    """Evaluates the checks one query at a time; the first query that cannot be evaluated fails the task."""

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def run(self):
        if not re.match(r'^https?://[^/?#]+', self.params['url']):
            self.module.fail_json(msg='`url` must be the http:// or https:// base URL of the Prometheus HTTP API, got %r'
                                  % self.params['url'])
        if self.params['timeout'] <= 0:
            self.module.fail_json(msg='`timeout` must be greater than 0, got %s' % self.params['timeout'])
        return dict(changed=False, **evaluate_checks(self.params['url'], self.params['checks'], self.params['purpose'],
                                                     self.params['headers'], self.params['timeout'],
                                                     self.params['validate_certs']))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            checks=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str'),
                query=dict(type='str', required=True),
                op=dict(type='str', choices=list(COMPARISONS)),
                threshold=dict(type='float'),
            ), required_together=[('op', 'threshold')]),
            purpose=dict(type='str', default='steady_state', choices=['steady_state', 'stop_condition']),
            headers=dict(type='dict', default={}, no_log=True),
            timeout=dict(type='float', default=5),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    try:
        module.exit_json(**PrometheusQuery(module).run())
    except PromQLError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())


if __name__ == '__main__':
    main()
