# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import random

import pytest

from ansible_collections.magsasa.chaos.plugins.modules.chaos_container import label_filters, matches, pick, signal_valid


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


@pytest.mark.parametrize('count, percent, total, expected', [
    (None, None, 5, 5), (2, None, 5, 2), (9, None, 5, 5), (None, 50, 5, 3), (None, 1, 5, 1), (None, 100, 4, 4),
    (1, None, 0, 0),
])
def test_pick_sizes(count, percent, total, expected):
    candidates = list(range(total))
    picked = pick(candidates, count, percent, random.Random(7))
    assert len(picked) == expected
    assert len(set(picked)) == expected and set(picked) <= set(candidates)


def test_pick_is_random():
    picks = set(tuple(pick(list(range(10)), 1, None, random.Random(seed))) for seed in range(30))
    assert len(picks) > 3


@pytest.mark.parametrize('name, ok', [('SIGTERM', True), ('hup', True), ('SIGNOPE', False), ('9', False)])
def test_signal_valid(name, ok):
    assert signal_valid(name) is ok
