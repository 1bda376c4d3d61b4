# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.magsasa.chaos.plugins.filter.report import failing_experiments, without_secrets

PASSED = {'name': 'A', 'status': 'completed', 'slo': {'verdict': 'pass', 'checks': []}}
VIOLATED = {'name': 'B', 'status': 'completed',
            'slo': {'verdict': 'fail', 'checks': [{'metric': 'mttr_seconds', 'passed': False}]}}
EXPECTED_ONLY = {'name': 'C', 'status': 'completed',
                 'slo': {'verdict': 'pass', 'checks': [{'metric': 'mttr_seconds', 'passed': False, 'expected': True}]}}
ABORTED = {'name': 'D', 'status': 'aborted', 'reason': 'stop condition: error rate 60 % over 20 samples'}
ERRORED = {'name': 'E', 'status': 'failed', 'reason': 'no process matched\nTraceback'}
SKIPPED = {'name': 'F', 'status': 'skipped', 'reason': 'nft is not installed'}
DRY_RUN = {'name': 'G', 'status': 'dry_run'}
ALL = [PASSED, VIOLATED, EXPECTED_ONLY, ABORTED, ERRORED, SKIPPED, DRY_RUN, 'not a record']


@pytest.mark.parametrize('violations, expected', [
    (False, ['E: ERROR - no process matched Traceback']),
    ('no', ['E: ERROR - no process matched Traceback']),
    (True, ['B: FAIL', 'D: ABORTED - stop condition: error rate 60 % over 20 samples',
            'E: ERROR - no process matched Traceback']),
    ('true', ['B: FAIL', 'D: ABORTED - stop condition: error rate 60 % over 20 samples',
              'E: ERROR - no process matched Traceback']),
])
def test_failing_experiments(violations, expected):
    assert failing_experiments(ALL, violations) == expected


@pytest.mark.parametrize('records', [[], [PASSED, EXPECTED_ONLY, SKIPPED, DRY_RUN]])
def test_nothing_fails_a_run_that_passed(records):
    assert failing_experiments(records, True) == []


@pytest.mark.parametrize('records, violations, message', [
    ({'name': 'A'}, False, 'the input must be a list of experiment records, got dict'),
    ([PASSED], 'sometimes', "violations must be true or false, got 'sometimes'"),
    ([PASSED], None, 'violations must be true or false, got None'),
])
def test_bad_input_is_named(records, violations, message):
    with pytest.raises(AnsibleFilterError, match=message):
        failing_experiments(records, violations)


@pytest.mark.parametrize('key, secret', [
    ('login_password', True), ('passwd', True), ('passphrase', True), ('login_pass', True), ('pass', True),
    ('client_secret', True), ('api_token', True), ('webhook_url', True), ('api_key', True), ('apikey', True),
    ('private_key', True), ('ssh_key', True), ('key', True), ('credentials', True), ('auth_header', True),
    ('cookie', True), ('session_id', True),
    ('passed', False), ('name', False), ('pidfile', False), ('signal', False), ('monkey', False),
    ('keep_samples', False), ('duration', False), ('table', False),
])
def test_without_secrets_drops_secret_keys(key, secret):
    assert (key in without_secrets({key: 'x', 'duration': 5})) is not secret


def test_without_secrets_goes_deep_and_strips_url_credentials():
    params = {'login': {'login_password': 'hunter2', 'host': 'db'}, 'url': 'https://user:pw@example.invalid/x'}
    assert without_secrets(params) == {'login': {'host': 'db'}, 'url': 'https://***@example.invalid/x'}


def test_without_secrets_wants_a_dict():
    with pytest.raises(AnsibleFilterError, match='the input must be a dict, got list'):
        without_secrets(['login_password'])
