# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest

from ansible_collections.magsasa.chaos.plugins.module_utils import _netem


def nets(*values):
    return _netem.parse_networks('destinations', list(values))


# ---------------------------------------------------------------- netem options

@pytest.mark.parametrize('kwargs, expected', [
    (dict(delay_ms=200), ['delay', '200ms']),
    (dict(delay_ms=200, jitter_ms=20), ['delay', '200ms', '20ms']),
    (dict(delay_ms=50, jitter_ms=10, correlation_percent=25), ['delay', '50ms', '10ms', '25%']),
    (dict(delay_ms=0.5), ['delay', '0.5ms']),
    (dict(loss_percent=5), ['loss', 'random', '5%']),
    (dict(loss_percent=0.25), ['loss', 'random', '0.25%']),
    (dict(corrupt_percent=1), ['corrupt', '1%']),
    (dict(duplicate_percent=2.5), ['duplicate', '2.5%']),
    (dict(delay_ms=100, reorder_percent=25), ['delay', '100ms', 'reorder', '25%']),
    (dict(rate='1mbit'), ['rate', '1mbit']),
    (dict(delay_ms=500, jitter_ms=50, correlation_percent=10, loss_percent=30, corrupt_percent=1,
          duplicate_percent=1, reorder_percent=5, rate='10mbit'),
     ['delay', '500ms', '50ms', '10%', 'loss', 'random', '30%', 'corrupt', '1%', 'duplicate', '1%',
      'reorder', '5%', 'rate', '10mbit']),
    (dict(delay_ms=0, loss_percent=0), []),
])
def test_netem_args(kwargs, expected):
    assert _netem.netem_args(**kwargs) == expected


# ---------------------------------------------------------------- tc commands

def test_tc_unscoped_is_a_root_netem_on_the_fault_handle():
    assert _netem.tc_commands('eth0', 0x3a7, ['delay', '200ms']) == [
        ['tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '3a7:', 'netem', 'delay', '200ms']]


def test_tc_spared_only_sends_everything_else_to_netem():
    commands = _netem.tc_commands('eth0', 0x10, ['loss', 'random', '5%'],
                                  spared=[dict(address='192.0.2.10', port=22)])
    assert commands[0] == ['tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '10:', 'prio', 'bands', '4',
                           'priomap'] + ['3'] * 16
    assert commands[1] == ['tc', 'qdisc', 'add', 'dev', 'eth0', 'parent', '10:4', 'handle', '11:', 'netem',
                           'loss', 'random', '5%']
    assert commands[2:] == [
        ['tc', 'filter', 'add', 'dev', 'eth0', 'parent', '10:', 'protocol', 'ip', 'prio', '1', 'u32',
         'match', 'ip', 'dst', '192.0.2.10/32', 'match', 'ip', 'protocol', '6', '0xff',
         'match', 'ip', 'sport', '22', '0xffff', 'flowid', '10:1']]


def test_tc_scoped_keeps_the_usual_priomap_and_selects_destinations():
    commands = _netem.tc_commands('eth1', 0x20, ['delay', '50ms'], destinations=nets('10.0.0.0/24', 'fd00::/64'))
    assert commands[0][-17:] == ['priomap', '1', '2', '2', '2', '1', '2', '0', '0', '1', '1', '1', '1', '1', '1',
                                 '1', '1']
    filters = [c[8:] for c in commands[2:]]
    assert filters == [
        ['ip', 'prio', '3', 'u32', 'match', 'ip', 'dst', '10.0.0.0/24', 'flowid', '20:4'],
        ['ipv6', 'prio', '4', 'u32', 'match', 'ip6', 'dst', 'fd00::/64', 'flowid', '20:4'],
    ]


@pytest.mark.parametrize('kwargs, expected_selects', [
    (dict(sources=nets('10.1.0.5')), [['match', 'ip', 'src', '10.1.0.5/32']]),
    (dict(ports=[5432]), [['match', 'ip', 'dport', '5432', '0xffff'], ['match', 'ip', 'sport', '5432', '0xffff'],
                          ['match', 'ip6', 'dport', '5432', '0xffff'], ['match', 'ip6', 'sport', '5432', '0xffff']]),
    (dict(destinations=nets('10.0.0.0/8'), ports=[80]),
     [['match', 'ip', 'dst', '10.0.0.0/8', 'match', 'ip', 'dport', '80', '0xffff'],
      ['match', 'ip', 'dst', '10.0.0.0/8', 'match', 'ip', 'sport', '80', '0xffff']]),
    (dict(destinations=nets('10.0.0.1'), sources=nets('10.0.0.2')),
     [['match', 'ip', 'dst', '10.0.0.1/32'], ['match', 'ip', 'src', '10.0.0.2/32']]),
])
def test_tc_select_filters(kwargs, expected_selects):
    commands = _netem.tc_commands('eth0', 0x30, ['delay', '10ms'], **kwargs)
    selects = [c[12:-2] for c in commands if c[1] == 'filter' and c[-1] == '30:4']
    assert selects == expected_selects
    assert all(c[10] in ('3', '4') for c in commands if c[1] == 'filter' and c[-1] == '30:4')


def test_tc_exclude_ports_and_control_channel_are_classified_first():
    commands = _netem.tc_commands('eth0', 0x40, ['delay', '10ms'], destinations=nets('10.0.0.0/8'),
                                  exclude_ports=[22], spared=[dict(address='fd00::9', port=2222)])
    filters = [c for c in commands if c[1] == 'filter']
    spare = [c for c in filters if c[-1] == '40:1']
    select = [c for c in filters if c[-1] == '40:4']
    assert max(int(c[10]) for c in spare) < min(int(c[10]) for c in select)
    assert ['match', 'ip6', 'dst', 'fd00::9/128', 'match', 'ip6', 'protocol', '6', '0xff',
            'match', 'ip6', 'sport', '2222', '0xffff'] in [c[12:-2] for c in spare]
    assert ['match', 'ip', 'sport', '22', '0xffff'] in [c[12:-2] for c in spare]
    assert ['match', 'ip', 'dport', '22', '0xffff'] in [c[12:-2] for c in spare]


def test_tc_probe_needs_prio_only_when_scoped_or_spared():
    assert not _netem.tc_needs_prio()
    assert _netem.tc_needs_prio(ports=[80])
    assert _netem.tc_needs_prio(spared=[dict(address='10.0.0.1', port=22)])


# ---------------------------------------------------------------- tc qdisc show

QDISC_SHOW = '''\
qdisc prio 3a7: dev eth0 root refcnt 2 bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1
qdisc netem 3a8: dev eth0 parent 3a7:4 limit 1000 delay 200ms  20ms 25% loss 5% corrupt 1% duplicate 2% reorder 10% gap 1 rate 1Mbit
qdisc pfifo 0: dev eth0 parent 3a7:1 limit 1000p
qdisc ingress ffff: dev eth0 parent ffff:fff1 ----------------
'''


def test_parse_qdisc_show():
    qdiscs = _netem.parse_qdisc_show(QDISC_SHOW)
    assert [(q['kind'], q['handle'], q['major'], q['parent'], q['dev']) for q in qdiscs] == [
        ('prio', '3a7:', 0x3a7, 'root', 'eth0'),
        ('netem', '3a8:', 0x3a8, '3a7:4', 'eth0'),
        ('pfifo', '0:', 0, '3a7:1', 'eth0'),
        ('ingress', 'ffff:', 0xffff, 'ffff:fff1', 'eth0'),
    ]
    assert qdiscs[1]['netem'] == dict(limit=1000, delay_ms=200.0, jitter_ms=20.0, correlation_percent=25.0,
                                      loss_percent=5.0, corrupt_percent=1.0, duplicate_percent=2.0,
                                      reorder_percent=10.0, rate='1Mbit')
    assert _netem.root_qdisc(qdiscs)['kind'] == 'prio'


@pytest.mark.parametrize('line, expected', [
    ('qdisc netem 8001: dev lo root refcnt 2 limit 1000 delay 1s', dict(limit=1000, delay_ms=1000.0)),
    ('qdisc netem 8001: dev lo root refcnt 2 limit 1000 delay 500us', dict(limit=1000, delay_ms=0.5)),
    ('qdisc netem 8001: root refcnt 2 limit 1000 loss random 30%', dict(limit=1000, loss_percent=30.0)),
    ('qdisc netem 8001: dev eth0 root refcnt 2 limit 1000 delay 100.5ms 10ms',
     dict(limit=1000, delay_ms=100.5, jitter_ms=10.0)),
])
def test_parse_netem_line_variants(line, expected):
    assert _netem.parse_qdisc_show(line)[0]['netem'] == expected


@pytest.mark.parametrize('text, root', [
    ('qdisc noqueue 0: dev lo root refcnt 2\n', ('noqueue', 0)),
    ('qdisc mq 0: dev eth0 root\nqdisc fq_codel 0: dev eth0 parent :1 limit 10240p flows 1024\n', ('mq', 0)),
    ('qdisc htb 1: dev eth0 root refcnt 2 r2q 10 default 0x1\n', ('htb', 1)),
    ('', None),
])
def test_root_qdisc(text, root):
    found = _netem.root_qdisc(_netem.parse_qdisc_show(text))
    assert (found and (found['kind'], found['major'])) == root or (found is None and root is None)


def test_free_handle_skips_used_majors_and_keeps_the_next_one_free():
    used = _netem.parse_qdisc_show('qdisc htb 100: dev e root\nqdisc netem 103: dev e parent 100:1\n')
    assert _netem.free_handle(used, 0x100) == 0x104
    assert _netem.free_handle(used, 0x101) == 0x101
    assert _netem.free_handle(used, 0x102) == 0x104
    assert _netem.free_handle([], 0x500) == 0x500


# ---------------------------------------------------------------- nftables

def chain(ruleset, name):
    body = ruleset.split('\tchain %s {\n' % name, 1)[1].split('\n\t}', 1)[0]
    return [line.strip() for line in body.splitlines()]


@pytest.mark.parametrize('loss, rule', [
    (5, 'numgen random mod 100 < 5 counter drop'),
    (30.0, 'numgen random mod 100 < 30 counter drop'),
    (12.5, 'numgen random mod 10000 < 1250 counter drop'),
    (0.01, 'numgen random mod 10000 < 1 counter drop'),
])
def test_nft_random_loss(loss, rule):
    text = _netem.nft_ruleset('magsasa_chaos_netem_1', ('egress',), loss_percent=loss)
    assert text.startswith('table inet magsasa_chaos_netem_1 {\n')
    assert chain(text, 'fault') == [rule]
    assert chain(text, 'egress') == ['type filter hook output priority -10; policy accept;',
                                     'oifname "lo" accept', 'jump fault']
    assert '\tchain ingress' not in text


def test_nft_partition_both_ways_between_a_host_and_cidrs():
    peers = nets('10.1.0.0/24', '10.1.0.7', '10.2.0.9', 'fd00::/64')
    text = _netem.nft_ruleset('t', ('egress', 'ingress'), partition=True, destinations=peers, sources=peers)
    assert 'set destinations_v4 {\n\t\ttype ipv4_addr; flags interval;\n\t\telements = { 10.1.0.0/24, 10.2.0.9 }' in text
    assert 'set sources_v6 {\n\t\ttype ipv6_addr; flags interval;\n\t\telements = { fd00::/64 }' in text
    assert chain(text, 'select_addresses') == [
        'ip daddr @destinations_v4 goto fault', 'ip6 daddr @destinations_v6 goto fault',
        'ip saddr @sources_v4 goto fault', 'ip6 saddr @sources_v6 goto fault']
    assert chain(text, 'fault') == ['counter drop']
    assert chain(text, 'ingress')[0] == 'type filter hook input priority -10; policy accept;'
    assert chain(text, 'ingress')[-1] == 'jump select_addresses'


def test_nft_control_channel_and_excluded_ports_come_before_any_drop():
    text = _netem.nft_ruleset('t', ('egress', 'ingress'), partition=True, ports=[5432, 6432], exclude_ports=[22],
                              interface='eth0', spared=[dict(address='192.0.2.1', port=22),
                                                        dict(address='2001:db8::1', port=2222)])
    assert chain(text, 'egress') == [
        'type filter hook output priority -10; policy accept;',
        'ip daddr 192.0.2.1 tcp sport 22 accept comment "control channel"',
        'ip6 daddr 2001:db8::1 tcp sport 2222 accept comment "control channel"',
        'meta l4proto { tcp, udp } th sport @exclude_ports accept',
        'meta l4proto { tcp, udp } th dport @exclude_ports accept',
        'oifname "eth0" jump select_ports',
    ]
    assert chain(text, 'ingress')[1:4] == [
        'ip saddr 192.0.2.1 tcp dport 22 accept comment "control channel"',
        'ip6 saddr 2001:db8::1 tcp dport 2222 accept comment "control channel"',
        'meta l4proto { tcp, udp } th sport @exclude_ports accept']
    assert chain(text, 'ingress')[-1] == 'iifname "eth0" jump select_ports'
    assert chain(text, 'select_ports') == ['meta l4proto { tcp, udp } th dport @ports goto fault',
                                           'meta l4proto { tcp, udp } th sport @ports goto fault']
    assert 'set ports {\n\t\ttype inet_service;\n\t\telements = { 5432, 6432 }' in text
    assert text.index('accept comment "control channel"') < text.index('drop')


def test_nft_addresses_then_ports_then_fault():
    text = _netem.nft_ruleset('t', ('egress',), loss_percent=15, destinations=nets('10.0.0.0/8'), ports=[80])
    assert chain(text, 'select_addresses') == ['ip daddr @destinations_v4 goto select_ports']
    assert chain(text, 'select_ports')[0] == 'meta l4proto { tcp, udp } th dport @ports goto fault'


@pytest.mark.parametrize('interface, guard', [
    (None, []),
    ('docker0', ['iifname != "docker0" oifname != "docker0" accept']),
])
def test_nft_forwarded_traffic_gets_a_forward_hook(interface, guard):
    text = _netem.nft_ruleset('t', ('egress', 'ingress'), partition=True, destinations=nets('172.17.0.0/16'),
                              exclude_ports=[53], interface=interface, forwarded=True,
                              spared=[dict(address='192.0.2.1', port=22)])
    assert chain(text, 'forward') == (['type filter hook forward priority -10; policy accept;',
                                       'meta l4proto { tcp, udp } th sport @exclude_ports accept',
                                       'meta l4proto { tcp, udp } th dport @exclude_ports accept']
                                      + guard + ['jump select_addresses'])
    assert text.index('chain egress') < text.index('chain ingress') < text.index('chain forward')
    assert '\tchain forward' not in _netem.nft_ruleset('t', ('egress',), partition=True)


def test_nft_nothing_to_drop_is_refused():
    with pytest.raises(ValueError):
        _netem.nft_ruleset('t', ('egress',))


@pytest.mark.parametrize('fault_id, name', [
    ('netem-3f9a1c2b7d', 'magsasa_chaos_netem_3f9a1c2b7d'),
    ('region.a-cut', 'magsasa_chaos_region_a_cut'),
])
def test_table_name(fault_id, name):
    assert _netem.table_name(fault_id) == name


def test_revert_scripts_delete_only_their_own_objects():
    nft = _netem.nft_delete_script()
    assert 'table inet %s\\ndelete table inet %s\\n' in nft and '"$CHAOS_TABLE"' in nft
    tc = _netem.tc_delete_script()
    assert 'qdisc del dev "$CHAOS_DEV" root handle "$CHAOS_HANDLE:"' in tc
    assert tc.index('grep -q') < tc.index('qdisc del')


def test_parse_nft_table_json():
    listing = {'nftables': [
        {'metainfo': {'version': '1.0.6'}},
        {'table': {'family': 'inet', 'name': 't'}},
        {'set': {'name': 'ports', 'table': 't'}},
        {'chain': {'name': 'egress', 'table': 't'}},
        {'chain': {'name': 'fault', 'table': 't'}},
        {'rule': {'chain': 'egress', 'expr': [{'jump': {'target': 'fault'}}]}},
        {'rule': {'chain': 'fault', 'expr': [{'counter': {'packets': 0}}, {'drop': None}]}},
    ]}
    assert _netem.parse_nft_table_json(json.dumps(listing)) == dict(chains=['egress', 'fault'], sets=['ports'],
                                                                    rules=2, drop_rules=1)


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize('call, message', [
    (lambda: _netem.check_percent('loss_percent', 150), '`loss_percent` must be 0-100, got 150'),
    (lambda: _netem.check_percent('corrupt_percent', -1), '`corrupt_percent` must be 0-100, got -1'),
    (lambda: _netem.check_non_negative('delay_ms', -5), '`delay_ms` must be 0 or more, got -5'),
    (lambda: _netem.parse_networks('destinations', ['10.0.0.0/24', '10.0.0.300/24']),
     "`destinations` must hold IP addresses or CIDRs, got '10.0.0.300/24'"),
    (lambda: _netem.parse_networks('sources', ['10.0.0.0/33']), "`sources` must hold IP addresses or CIDRs, got '10.0.0.0/33'"),
    (lambda: _netem.parse_networks('sources', ['db.example']), "`sources` must hold IP addresses or CIDRs, got 'db.example'"),
    (lambda: _netem.check_ports([22, 80], [80]), 'port 80 is in both `ports` and `exclude_ports`'),
    (lambda: _netem.check_ports([0], []), '`ports` must hold ports 1-65535, got 0'),
    (lambda: _netem.check_ports([], [70000]), '`exclude_ports` must hold ports 1-65535, got 70000'),
    (lambda: _netem.parse_rate('fast'), "`rate` must be a positive number with a unit"),
    (lambda: _netem.parse_rate('0mbit'), "`rate` must be a positive number with a unit"),
    (lambda: _netem.control_channel('10.0.0.0/24', 22), "`control_channel.address` must be one address, got '10.0.0.0/24'"),
    (lambda: _netem.control_channel('10.0.0.1', 0), '`control_channel.port` must hold ports 1-65535, got 0'),
])
def test_validation_errors_name_field_and_value(call, message):
    with pytest.raises(_netem.NetemInputError) as error:
        call()
    assert message in str(error.value)


def test_validation_accepts_and_normalises():
    assert _netem.check_percent('loss_percent', 100) == 100.0
    assert _netem.check_ports([80, 22, 80], [443]) == ([22, 80], [443])
    assert [n.with_prefixlen for n in nets('10.0.0.5/24', '10.0.0.0/25', '::ffff:192.0.2.1')] == [
        '10.0.0.0/24', '192.0.2.1/32']
    assert _netem.parse_rate('512 KBit') == '512kbit'


@pytest.mark.parametrize('text, expected', [
    ('192.0.2.10 53422 192.0.2.20 22', dict(address='192.0.2.10', port=22)),
    ('2001:db8::10 53422 2001:db8::20 2222', dict(address='2001:db8::10', port=2222)),
    ('::ffff:192.0.2.10 53422 ::ffff:192.0.2.20 22', dict(address='192.0.2.10', port=22)),
    ('', None),
    (None, None),
    ('192.0.2.10 53422 192.0.2.20', None),
    ('nonsense 1 2 3', None),
    ('192.0.2.10 1 192.0.2.20 99999', None),
])
def test_parse_ssh_connection(text, expected):
    assert _netem.parse_ssh_connection(text) == expected


# ---------------------------------------------------------------- nfqueue rules

QUEUE = ['-j', 'NFQUEUE', '--queue-num', '7', '--queue-bypass']
T = ['-w', '-t', 'mangle']


def test_ipt_chain_base_is_short_stable_and_per_fault():
    base = _netem.ipt_chain_base('netem-3f9a1c2b7d')
    assert base == _netem.ipt_chain_base('netem-3f9a1c2b7d') != _netem.ipt_chain_base('netem-3f9a1c2b7e')
    assert base.startswith('MCHAOS-') and len(base + '-S') <= 28


def test_ipt_chains_lists_hooks_and_every_owned_chain():
    assert _netem.ipt_chains('MCHAOS-1', ('egress', 'ingress')) == (
        {'OUTPUT': 'MCHAOS-1-O', 'INPUT': 'MCHAOS-1-I'}, ['MCHAOS-1-O', 'MCHAOS-1-I', 'MCHAOS-1-S'])
    assert _netem.ipt_chains('MCHAOS-1', ('ingress',)) == ({'INPUT': 'MCHAOS-1-I'}, ['MCHAOS-1-I', 'MCHAOS-1-S'])


def test_ipt_unscoped_egress_queues_everything_but_loopback():
    assert _netem.ipt_queue_rules('B', 4, ('egress',), 7) == [
        T + ['-N', 'B-S'],
        T + ['-A', 'B-S'] + QUEUE,
        T + ['-N', 'B-O'],
        T + ['-A', 'B-O', '-o', 'lo', '-j', 'RETURN'],
        T + ['-A', 'B-O', '-j', 'B-S'],
        T + ['-I', 'OUTPUT', '1', '-j', 'B-O'],
    ]


def test_ipt_scoped_both_ways_spares_first_and_hooks_last():
    rules = _netem.ipt_queue_rules('B', 4, ('egress', 'ingress'), 7, destinations=nets('10.0.0.0/24'),
                                   sources=nets('10.0.1.5'), ports=[8080], exclude_ports=[22],
                                   interface='eth0', spared=[dict(address='192.0.2.10', port=2222)])
    assert rules[:2] == [T + ['-N', 'B-S'], T + ['-A', 'B-S', '-p', 'tcp', '-m', 'tcp', '--dport', '8080'] + QUEUE]
    assert T + ['-A', 'B-S', '-p', 'udp', '-m', 'udp', '--sport', '8080'] + QUEUE in rules
    egress = [r[4:] for r in rules if r[3:5] == ['-A', 'B-O']]
    assert egress[0] == ['B-O', '-p', 'tcp', '-d', '192.0.2.10', '-m', 'tcp', '--sport', '2222', '-j', 'RETURN']
    assert ['B-O', '-p', 'udp', '-m', 'udp', '--dport', '22', '-j', 'RETURN'] in egress
    assert egress[-3:] == [['B-O', '!', '-o', 'eth0', '-j', 'RETURN'], ['B-O', '-d', '10.0.0.0/24', '-j', 'B-S'],
                           ['B-O', '-s', '10.0.1.5/32', '-j', 'B-S']]
    ingress = [r[4:] for r in rules if r[3:5] == ['-A', 'B-I']]
    assert ingress[0] == ['B-I', '-p', 'tcp', '-s', '192.0.2.10', '-m', 'tcp', '--dport', '2222', '-j', 'RETURN']
    assert ['B-I', '!', '-i', 'eth0', '-j', 'RETURN'] in ingress
    assert rules[-2:] == [T + ['-I', 'OUTPUT', '1', '-j', 'B-O'], T + ['-I', 'INPUT', '1', '-j', 'B-I']]


def test_ipt_rules_of_a_version_without_selected_addresses_are_empty():
    assert _netem.ipt_queue_rules('B', 6, ('egress',), 7, destinations=nets('10.0.0.1')) == []
    v6 = _netem.ipt_queue_rules('B', 6, ('egress',), 7, destinations=nets('10.0.0.1', 'fd00::1'))
    assert T + ['-A', 'B-O', '-d', 'fd00::1/128', '-j', 'B-S'] in v6
    spared_v4 = _netem.ipt_queue_rules('B', 6, ('egress',), 7, spared=[dict(address='192.0.2.1', port=22)])
    assert not [r for r in spared_v4 if '192.0.2.1' in r]


def test_ipt_delete_script_removes_jumps_then_flushes_then_deletes():
    script = _netem.ipt_delete_script()
    assert script.index('-D "${hook%%=*}"') < script.index('for step in -F -X')
    assert '-t mangle' in script and 'exit $status' in script


def test_nft_ruleset_queues_instead_of_dropping():
    ruleset = _netem.nft_ruleset('t', ('egress',), ports=[80], queue_num=7)
    assert 'counter queue num 7 bypass' in ruleset and 'drop' not in ruleset
    with pytest.raises(ValueError):
        _netem.nft_ruleset('t', ('egress',))


@pytest.mark.parametrize('text, expected', [
    ('-A OUTPUT -j NFQUEUE --queue-num 7 --queue-bypass\n-A X -j NFQUEUE --queue-num 30050', {7, 30050}),
    ('chain c {\n\t\tqueue num 12 bypass\n\t\tqueue flags bypass to 20-22\n\t\tqueue to 5\n}', {12, 20, 21, 22, 5}),
    ('-A OUTPUT -j ACCEPT\n', set()),
])
def test_queue_nums_in_rules(text, expected):
    assert _netem.queue_nums_in_rules(text) == expected


@pytest.mark.parametrize('used, preferred, expected', [
    (set(), 105, 105),
    ({105, 106}, 105, 107),
    ({108, 109}, 109, 100),
])
def test_free_queue_num_wraps_within_its_range(used, preferred, expected):
    assert _netem.free_queue_num(used, preferred, 100, 10) == expected


def test_free_queue_num_fails_when_the_range_is_full():
    with pytest.raises(ValueError):
        _netem.free_queue_num(set(range(100, 110)), 100, 100, 10)


@pytest.mark.parametrize('rate, expected', [('1mbit', 1e6), ('512kbit', 512e3), ('10mbps', 80e6), ('100bit', 100.0)])
def test_rate_bits_per_second(rate, expected):
    assert _netem.rate_bits_per_second(rate) == expected


LOCAL = _netem.parse_ip_addresses('1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n'
                                  '2: eth0    inet 10.1.2.3/24 brd 10.1.2.255 scope global eth0\n'
                                  '2: eth0    inet6 fd00::5/64 scope global\n')


def test_parse_ip_addresses():
    assert [str(n) for n in LOCAL] == ['127.0.0.0/8', '10.1.2.0/24', 'fd00::/64']


@pytest.mark.parametrize('interface, destinations, sources, fragment', [
    ('lo', ['127.0.0.2'], [], None),
    ('lo', ['10.1.2.3'], [], None),
    (None, ['10.9.0.0/16'], [], None),
    ('eth0', [], [], None),
    ('lo', ['192.0.2.7'], [], 'on interface lo only this host\'s own addresses travel, and none of 192.0.2.7/32'),
    ('eth0', ['127.0.0.1'], ['::1'], '127.0.0.1/32, ::1/128 are loopback addresses, which never cross interface eth0'),
    (None, ['127.0.0.1'], [], 'never cross the non-loopback interfaces (no `interface` given); set `interface: lo`'),
])
def test_selection_matches_nothing(interface, destinations, sources, fragment):
    reason = _netem.selection_matches_nothing(interface, nets(*destinations), nets(*sources), LOCAL)
    if fragment is None:
        assert reason is None
    else:
        assert fragment in reason
