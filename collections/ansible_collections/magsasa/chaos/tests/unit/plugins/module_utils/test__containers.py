# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _containers


def events(*actions):
    return [dict(Type='container', Action=action) for action in actions]


@pytest.mark.parametrize('stream, healthcheck, recovered, died', [
    (events('kill', 'die', 'start'), False, 3, True),
    (events('die', 'start', 'health_status: starting', 'health_status: healthy'), True, 4, True),
    (events('die', 'start', 'health_status: unhealthy'), True, None, True),
    (events('die'), False, None, True),
    (events('kill'), False, None, False),
    (events('start', 'die', 'start'), False, 1, False),
    (events('start', 'die', 'health_status: healthy', 'start', 'health_status: healthy'), True, 5, True),
    ([dict(status='die'), dict(status='start')], False, 2, True),  # the API before Action existed
    ([], False, None, False),
])
def test_recovery_from_events(stream, healthcheck, recovered, died):
    # The clock reads the position (1-based) of the event being handled: the moment it arrived.
    position = [0]

    def delivered():
        for position[0], event in enumerate(stream, 1):
            yield event
    assert _containers.recovery_from_events(delivered(), healthcheck, clock=lambda: position[0]) == (recovered, died)


@pytest.mark.parametrize('value, expected', [
    ('2026-11-29T18:38:47.325992509Z', 1795977527.325992509),
    ('2026-11-29T18:38:47Z', 1795977527.0),
    ('2026-11-29T20:38:47.5+02:00', 1795977527.5),
    ('0001-01-01T00:00:00Z', 0.0),
])
def test_parse_docker_time(value, expected):
    assert _containers.parse_docker_time(value) == pytest.approx(expected, abs=1e-6)
