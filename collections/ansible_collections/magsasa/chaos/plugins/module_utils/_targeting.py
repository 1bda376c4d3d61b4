# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Choosing targets, shared by the modules that hit some of several matching things
(``chaos_process``: processes, ``chaos_container``: containers).

A module names its selector options (exactly one is given with O(state=present)) and may narrow the
matches with O(count) or O(percent), picked at random. The argument-spec rules, the checks of
O(count) / O(percent) and the pick live here once, as plain functions unit-tested without targets.
"""

import math
import random


def selector_rules(selectors):
    """The argument-spec rules for a selector group: ``(required_if, mutually_exclusive)``.

    One of ``selectors`` is required with ``state=present``; at most one may be given, and O(count)
    excludes O(percent)."""
    selectors = tuple(selectors)
    return [('state', 'present', selectors, True)], [selectors, ('count', 'percent')]


def given(params, names):
    """The selector options among ``names`` that are set, as ``{name: value}``."""
    return dict((name, params[name]) for name in names if params.get(name) is not None)


def count_percent_problem(count=None, percent=None):
    """What is wrong with O(count) / O(percent) (naming the field and the value), or None."""
    if count is not None and count < 1:
        return '`count` must be at least 1, got %s' % count
    if percent is not None and not 0 < percent <= 100:
        return '`percent` must be more than 0 and at most 100, got %s' % percent
    return None


def how_many(total, count=None, percent=None):
    """How many of ``total`` matches to hit: all of them, ``count`` (at most all) or ``percent`` %
    rounded up (at least one); 0 when nothing matched."""
    if total <= 0:
        return 0
    if count is not None:
        return min(count, total)
    if percent is not None:
        return min(total, max(1, int(math.ceil(total * percent / 100.0))))
    return total


def pick(candidates, count=None, percent=None, rng=None):
    """The candidates to hit, chosen at random (``rng``, default ``random.SystemRandom()``), in
    the order of ``candidates``."""
    candidates = list(candidates)
    wanted = how_many(len(candidates), count, percent)
    if wanted == len(candidates):
        return candidates
    chosen = sorted((rng or random.SystemRandom()).sample(range(len(candidates)), wanted))
    return [candidates[i] for i in chosen]
