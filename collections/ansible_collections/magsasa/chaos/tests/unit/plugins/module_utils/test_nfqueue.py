# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import struct

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _nfqueue


def packet_message(packet_id, queue_num=7, cap_len=None, payload=b'\x45' * 20):
    attrs = [_nfqueue.attribute(_nfqueue.NFQA_PACKET_HDR, struct.pack('!IHB', packet_id, 0x0800, 3)),
             _nfqueue.attribute(_nfqueue.NFQA_PAYLOAD, payload)]
    if cap_len is not None:
        attrs.append(_nfqueue.attribute(_nfqueue.NFQA_CAP_LEN, struct.pack('!I', cap_len)))
    return _nfqueue.message(_nfqueue.NFQNL_MSG_PACKET, queue_num, attrs, flags=0)


def ack(seq, error=0):
    body = struct.pack('=i', -error) + _nfqueue.NLMSG_HDR.pack(16, 0, 0, seq, 0)
    return _nfqueue.NLMSG_HDR.pack(16 + len(body), _nfqueue.NLMSG_ERROR, 0, seq, 0) + body


# ---------------------------------------------------------------- messages

@pytest.mark.parametrize('payload, padded', [(b'', 4), (b'\x01', 8), (b'\x01\x02\x03\x04', 8), (b'\x01' * 5, 12)])
def test_attribute_is_padded_to_four_bytes_and_its_length_excludes_the_padding(payload, padded):
    data = _nfqueue.attribute(9, payload)
    assert len(data) == padded
    assert struct.unpack('=HH', data[:4]) == (4 + len(payload), 9)


def test_verdict_carries_the_id_and_no_payload():
    data = _nfqueue.verdict(30050, 0x01020304, accept=True)
    length, msg_type, flags, _seq, _pid = _nfqueue.NLMSG_HDR.unpack_from(data)
    assert length == len(data) == 16 + 4 + 4 + 8
    assert msg_type == (3 << 8) | 1 and flags == _nfqueue.NLM_F_REQUEST
    assert struct.unpack('!BBH', data[16:20]) == (0, 0, 30050)
    assert struct.unpack('=HH', data[20:24]) == (12, _nfqueue.NFQA_VERDICT_HDR)
    assert struct.unpack('!II', data[24:32]) == (_nfqueue.NF_ACCEPT, 0x01020304)
    assert struct.unpack('!II', _nfqueue.verdict(1, 5, accept=False)[24:32]) == (_nfqueue.NF_DROP, 5)


def test_config_messages_ask_for_an_ack_and_hold_bind_copy_range_maxlen_and_fail_open():
    bind = _nfqueue.config_bind(7, seq=1)
    assert _nfqueue.NLMSG_HDR.unpack_from(bind)[1:4] == ((3 << 8) | 2, _nfqueue.NLM_F_REQUEST | _nfqueue.NLM_F_ACK, 1)
    assert _nfqueue.parse_attributes(bind, 20) == {_nfqueue.NFQA_CFG_CMD: struct.pack('!BxH', 1, 0)}
    params = _nfqueue.parse_attributes(_nfqueue.config_params(7, copy_range=64, maxlen=5000), 20)
    assert params[_nfqueue.NFQA_CFG_PARAMS] == struct.pack('!IB', 64, _nfqueue.NFQNL_COPY_PACKET)
    assert params[_nfqueue.NFQA_CFG_QUEUE_MAXLEN] == struct.pack('!I', 5000)
    assert params[_nfqueue.NFQA_CFG_FLAGS] == params[_nfqueue.NFQA_CFG_MASK] == struct.pack('!I', 1)
    closed = _nfqueue.parse_attributes(_nfqueue.config_params(7, fail_open=False), 20)
    assert closed[_nfqueue.NFQA_CFG_FLAGS] == struct.pack('!I', 0)


def test_parse_messages_reads_packets_and_acks_from_one_datagram():
    data = packet_message(11, cap_len=1500) + packet_message(12, payload=b'\x45' * 40) + ack(2) + ack(1, error=16)
    assert _nfqueue.parse_messages(data) == [
        dict(kind='packet', queue=7, id=11, length=1500),
        dict(kind='packet', queue=7, id=12, length=40),
        dict(kind='error', seq=2, errno=0),
        dict(kind='error', seq=1, errno=16),
    ]


def test_parse_messages_stops_at_a_truncated_message():
    data = packet_message(1) + packet_message(2)
    assert [m['id'] for m in _nfqueue.parse_messages(data[:-3])] == [1]


def test_parse_attributes_masks_the_nested_and_byteorder_flags():
    data = struct.pack('=HH', 8, 0x8000 | 4) + b'abcd'
    assert _nfqueue.parse_attributes(data) == {4: b'abcd'}


# ---------------------------------------------------------------- delay arithmetic

@pytest.mark.parametrize('delay, jitter, unit, expected', [
    (200, 0, 0.7, 0.2),
    (200, 20, 0.0, 0.18),
    (200, 20, 0.5, 0.2),
    (200, 20, 1.0, 0.22),
    (10, 10, 0.0, 0.0),
    (5, 10, 0.0, 0.0),
])
def test_hold_seconds_is_delay_plus_uniform_jitter_never_negative(delay, jitter, unit, expected):
    assert _nfqueue.hold_seconds(delay, jitter, unit) == pytest.approx(expected)


@pytest.mark.parametrize('previous, correlation, draw, expected', [
    (0.9, 0.0, 0.1, 0.1),
    (0.9, 1.0, 0.1, 0.9),
    (0.9, 0.25, 0.1, 0.3),
])
def test_correlated_uniform_leans_on_the_previous_value(previous, correlation, draw, expected):
    assert _nfqueue.correlated_uniform(previous, correlation, draw) == pytest.approx(expected)


def test_correlation_narrows_the_spread_between_consecutive_delays():
    import random
    rng = random.Random(4)

    def mean_step(correlation):
        previous, steps = 0.5, []
        for _step in range(5000):
            unit = _nfqueue.correlated_uniform(previous, correlation, rng.random())
            steps.append(abs(unit - previous))
            previous = unit
        return sum(steps) / len(steps)
    assert mean_step(0.75) < 0.5 * mean_step(0.0)


@pytest.mark.parametrize('release, size, rate, link_free_at, expected', [
    (10.0, 1250, None, 0.0, (10.0, 0.0)),
    (10.0, 1250, 1e6, 0.0, (10.0, 10.01)),
    (10.0, 1250, 1e6, 10.5, (10.5, 10.51)),
])
def test_rate_release_serialises_packets_on_the_link(release, size, rate, link_free_at, expected):
    assert _nfqueue.rate_release(release, size, rate, link_free_at) == pytest.approx(expected)


@pytest.mark.parametrize('values, fraction, expected', [
    ([], 0.5, None),
    ([3.0], 0.95, 3.0),
    ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
    (list(range(1, 101)), 0.95, 95),
    (list(range(1, 101)), 0.99, 99),
])
def test_percentile_nearest_rank(values, fraction, expected):
    assert _nfqueue.percentile(values, fraction) == expected


def test_read_queue_table():
    text = '    0  27204     0 2    64     0     0        0  1\n30050   9676     3 2    64     0     0       12  1\n'
    assert _nfqueue.read_queue_table(text) == {0: 27204, 30050: 9676}
    assert _nfqueue.read_queue_table('') == {}


def test_describe_errno_names_the_busy_queue():
    assert 'queue_num 7 is already in use' in _nfqueue.describe_errno(16, 7)


def test_delayer_schedules_holds_drops_and_keeps_a_bounded_sample():
    delayer = _nfqueue.Delayer(dict(queue_num=7, delay_ms=100, loss_percent=0), '/nonexistent')
    delayer.schedule(dict(id=1, length=60), now=5.0)
    delayer.schedule(dict(id=2, length=60), now=5.01)
    assert [(round(r, 3), i) for r, _s, i, _a, _t in sorted(delayer.heap)] == [(5.1, 1), (5.11, 2)]
    lossy = _nfqueue.Delayer(dict(queue_num=7, delay_ms=100, loss_percent=100), '/nonexistent')
    lossy.schedule(dict(id=3, length=60), now=5.0)
    assert lossy.heap[0][2:4] == (3, False)
    for index in range(_nfqueue.HOLD_SAMPLES + 10):
        delayer.note_hold(index)
    assert len(delayer.holds) == _nfqueue.HOLD_SAMPLES and delayer.hold_count == _nfqueue.HOLD_SAMPLES + 10
