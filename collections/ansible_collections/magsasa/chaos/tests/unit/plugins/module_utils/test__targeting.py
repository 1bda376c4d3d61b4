# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import random

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _targeting


@pytest.mark.parametrize('count, percent, total, expected', [
    (None, None, 5, 5), (2, None, 5, 2), (9, None, 5, 5), (None, 50, 5, 3), (None, 1, 5, 1),
    (None, 100, 4, 4), (1, None, 0, 0), (None, 50, 0, 0), (None, None, 0, 0),
    (3, None, 10, 3), (50, None, 10, 10), (None, 50, 10, 5), (None, 25, 10, 3), (None, 0.1, 10, 1),
])
def test_how_many_and_pick_sizes(count, percent, total, expected):
    assert _targeting.how_many(total, count, percent) == expected
    candidates = list(range(100, 100 + total))
    picked = _targeting.pick(candidates, count, percent, random.Random(7))
    assert len(picked) == expected
    assert len(set(picked)) == expected and set(picked) <= set(candidates)
    assert picked == sorted(picked)  # in the candidates' order


def test_pick_keeps_the_candidates_order():
    candidates = ['c', 'a', 'b', 'e', 'd']
    for seed in range(20):
        picked = _targeting.pick(candidates, 3, rng=random.Random(seed))
        assert picked == [c for c in candidates if c in picked]


@pytest.mark.parametrize('total', [10, 20])
def test_pick_is_random(total):
    picks = set(tuple(_targeting.pick(list(range(total)), 1, None, random.Random(seed))) for seed in range(30))
    assert len(picks) > 3


def test_pick_default_rng_works():
    assert len(_targeting.pick(range(10), None, 30)) == 3


@pytest.mark.parametrize('count, percent, message', [
    (None, None, None), (1, None, None), (None, 100, None), (None, 0.5, None),
    (0, None, '`count` must be at least 1, got 0'),
    (-2, None, '`count` must be at least 1, got -2'),
    (None, 0, '`percent` must be more than 0 and at most 100, got 0'),
    (None, 150, '`percent` must be more than 0 and at most 100, got 150'),
    (None, -1.5, '`percent` must be more than 0 and at most 100, got -1.5'),
])
def test_count_percent_problem(count, percent, message):
    assert _targeting.count_percent_problem(count, percent) == message


def test_selector_rules():
    required_if, exclusive = _targeting.selector_rules(['name', 'id'])
    assert required_if == [('state', 'present', ('name', 'id'), True)]
    assert exclusive == [('name', 'id'), ('count', 'percent')]


@pytest.mark.parametrize('params, expected', [
    ({'name': 'web', 'id': None, 'labels': None}, {'name': 'web'}),
    ({'name': None, 'id': None, 'labels': None}, {}),
    ({'name': None, 'id': 'abc', 'labels': {'a': 1}}, {'id': 'abc', 'labels': {'a': 1}}),
    ({'name': None}, {}),
])
def test_given(params, expected):
    assert _targeting.given(params, ('name', 'id', 'labels', 'compose_service')) == expected
