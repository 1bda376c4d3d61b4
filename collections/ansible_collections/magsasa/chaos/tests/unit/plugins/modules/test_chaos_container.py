# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.modules.chaos_container import label_filters, matches, signal_valid


@pytest.mark.parametrize('labels, service, project, expected', [
    (None, None, None, []),
    ({'app': 'web', 'tier': 'front'}, None, None, ['app=web', 'tier=front']),
    (None, 'api', None, ['com.docker.compose.service=api']),
    ({'x': 1}, 'api', 'shop', ['com.docker.compose.project=shop', 'com.docker.compose.service=api', 'x=1']),
])
def test_label_filters(labels, service, project, expected):
    assert label_filters(labels, service, project) == expected


@pytest.mark.parametrize('name, cid, expected', [
    ('web', None, True), ('we', None, False), (None, 'abc123', True), (None, 'abd', False), ('web', 'abc', True),
])
def test_matches_exact_name_and_id_prefix(name, cid, expected):
    assert matches({'Names': ['/web'], 'Id': 'abc123def'}, name, cid) is expected


@pytest.mark.parametrize('name, ok', [('SIGTERM', True), ('hup', True), ('SIGNOPE', False), ('9', False)])
def test_signal_valid(name, ok):
    assert signal_valid(name) is ok
