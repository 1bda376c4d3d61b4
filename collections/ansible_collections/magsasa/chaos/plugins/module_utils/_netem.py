# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure builders and parsers for network faults (no side effects; the module runs the commands).

Two backends:

* ``tc`` netem: delay, jitter, correlation, loss, corruption, duplication, reordering, rate, on
  the egress of one interface. Unscoped and with nothing spared, netem is the root qdisc. Scoped
  (CIDRs, ports) or with traffic spared (the control channel, ``exclude_ports``), the root is a
  4-band ``prio`` qdisc whose band 4 holds netem; u32 filters send the selected traffic to band 4
  and the spared traffic to band 1, ahead of them.
* ``nftables``: random loss (``numgen random``) and partitions (drop), in one table owned by the
  fault, applied atomically. Every hook chain first accepts what is spared, then jumps down a
  chain of selections (addresses, then ports) ending in the chain that drops.
* ``nfqueue``: the same selection hands packets to a netfilter queue (``queue num N bypass`` in
  the fault's nftables table, or iptables ``NFQUEUE --queue-bypass`` in chains of the ``mangle``
  table the fault owns) where the userspace delayer of ``_nfqueue`` holds them.

Selection, identical for both backends: a packet is selected when its destination is in
``destinations`` or its source is in ``sources`` (no address list: any address), and, when
``ports`` is given, when its TCP/UDP source or destination port is one of them. Traffic with a
source or destination port in ``exclude_ports`` and the control channel are never selected.
"""

import ipaddress
import json
import re
import zlib

TABLE_PREFIX = 'magsasa_chaos_'
IPT_TABLE = 'mangle'
IPT_CHAIN_PREFIX = 'MCHAOS-'
IPT_HOOKS = {'egress': 'OUTPUT', 'ingress': 'INPUT'}
IPT_SUFFIX = {'egress': '-O', 'ingress': '-I', 'select': '-S'}
TABLE_FAMILY = 'inet'
NFT_PRIORITY = -10

TC_ONLY_OPTIONS = ('delay_ms', 'jitter_ms', 'correlation_percent', 'corrupt_percent', 'duplicate_percent',
                   'reorder_percent', 'rate')
PERCENT_OPTIONS = ('loss_percent', 'corrupt_percent', 'duplicate_percent', 'reorder_percent', 'correlation_percent')

# pfifo_fast's map of packet priority to band, so unselected traffic keeps its usual ordering.
PRIOMAP_DEFAULT = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
PRIOMAP_ALL_FAULTED = (3,) * 16
PRIO_BANDS = 4
SPARED_BAND = 1
FAULT_BAND = 4
# u32 filter priorities: spared traffic is classified before selected traffic, per protocol.
FILTER_PRIO = {('spare', 4): 1, ('spare', 6): 2, ('select', 4): 3, ('select', 6): 4}

RATE_RE = re.compile(r'^([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)$', re.IGNORECASE)
TIME_RE = re.compile(r'^([0-9]+(?:\.[0-9]+)?)(s|ms|us|usec|msec|sec)?$')
PERCENT_RE = re.compile(r'^([0-9]+(?:\.[0-9]+)?)%$')
QDISC_RE = re.compile(r'^qdisc\s+(?P<kind>\S+)\s+(?P<handle>[0-9a-f]*:)\s+(?:dev\s+(?P<dev>\S+)\s+)?'
                      r'(?P<parent>root|parent\s+\S+)(?P<rest>.*)$')
TIME_UNITS_MS = {'s': 1000.0, 'sec': 1000.0, 'ms': 1.0, 'msec': 1.0, 'us': 0.001, 'usec': 0.001, None: 0.001}


class NetemInputError(ValueError):
    """Bad input; the message names the field and the value."""


# ---------------------------------------------------------------- validation

def format_number(value):
    """A number as tc and messages print it: 5, 0.5, 12.25."""
    return '%g' % value


def check_percent(field, value):
    """``value`` as a float in 0-100 (None stays None)."""
    if value is None:
        return None
    if not 0 <= value <= 100:
        raise NetemInputError('`%s` must be 0-100, got %s' % (field, format_number(value)))
    return float(value)


def check_non_negative(field, value):
    if value is not None and value < 0:
        raise NetemInputError('`%s` must be 0 or more, got %s' % (field, format_number(value)))
    return value


def parse_rate(value):
    """A netem rate such as ``1mbit`` or ``500kbps``, normalised to lower case without spaces."""
    if value is None:
        return None
    match = RATE_RE.match(str(value).strip())
    if not match or float(match.group(1)) <= 0:
        raise NetemInputError('`rate` must be a positive number with a unit (bit, kbit, mbit, gbit, tbit, bps, kbps, '
                              'mbps, gbps, tbps), for example 1mbit, got %r' % (value,))
    return '%s%s' % (match.group(1), match.group(2).lower())


def parse_network(field, value):
    """One address or CIDR as an ``ipaddress`` network; host bits are allowed (``10.0.0.5/24``)."""
    text = str(value).strip()
    try:
        network = ipaddress.ip_network(u'%s' % text, strict=False)
    except ValueError:
        raise NetemInputError('`%s` must hold IP addresses or CIDRs, got %r' % (field, value))
    if network.version == 6 and network.prefixlen == 128 and network.network_address.ipv4_mapped:
        network = ipaddress.ip_network(u'%s/32' % network.network_address.ipv4_mapped)
    return network


def parse_networks(field, values):
    """A list of addresses/CIDRs, validated and collapsed (overlaps merged), IPv4 first."""
    networks = [parse_network(field, v) for v in values or []]
    result = []
    for version in (4, 6):
        result.extend(ipaddress.collapse_addresses([n for n in networks if n.version == version]))
    return result


def check_port(field, value):
    if value is None or not 1 <= int(value) <= 65535:
        raise NetemInputError('`%s` must hold ports 1-65535, got %s' % (field, value))
    return int(value)


def check_ports(ports, exclude_ports):
    """Both port lists validated, sorted and de-duplicated; a port in both is an error."""
    included = sorted(set(check_port('ports', p) for p in ports or []))
    excluded = sorted(set(check_port('exclude_ports', p) for p in exclude_ports or []))
    both = sorted(set(included) & set(excluded))
    if both:
        raise NetemInputError('port %s is in both `ports` and `exclude_ports`; a port is either faulted or spared'
                              % ', '.join(str(p) for p in both))
    return included, excluded


def parse_ssh_connection(text):
    """``SSH_CONNECTION`` ("client_ip client_port server_ip server_port") as the control channel
    seen from the target: the controller's address and the local sshd port. None if malformed."""
    fields = (text or '').split()
    if len(fields) != 4:
        return None
    try:
        address = parse_network('SSH_CONNECTION', fields[0])
        port = int(fields[3])
    except (NetemInputError, ValueError):
        return None
    if not 1 <= port <= 65535:
        return None
    return dict(address=str(address.network_address), port=port)


def control_channel(address, port):
    """A control channel given by the user, validated."""
    network = parse_network('control_channel.address', address)
    if network.num_addresses != 1:
        raise NetemInputError('`control_channel.address` must be one address, got %r' % (address,))
    return dict(address=str(network.network_address), port=check_port('control_channel.port', port))


def table_name(fault_id):
    """The nftables table a fault owns: ``magsasa_chaos_<fault id>`` with only [A-Za-z0-9_]."""
    return TABLE_PREFIX + re.sub(r'[^A-Za-z0-9_]', '_', fault_id)


# ---------------------------------------------------------------- tc netem

def netem_args(delay_ms=None, jitter_ms=None, correlation_percent=None, loss_percent=None, corrupt_percent=None,
               duplicate_percent=None, reorder_percent=None, rate=None):
    """The netem option words, e.g. ``['delay', '200ms', '20ms', '25%', 'loss', 'random', '5%']``."""
    args = []
    if delay_ms:
        args.extend(['delay', '%sms' % format_number(delay_ms)])
        if jitter_ms:
            args.append('%sms' % format_number(jitter_ms))
            if correlation_percent:
                args.append('%s%%' % format_number(correlation_percent))
    if loss_percent:
        args.extend(['loss', 'random', '%s%%' % format_number(loss_percent)])
    if corrupt_percent:
        args.extend(['corrupt', '%s%%' % format_number(corrupt_percent)])
    if duplicate_percent:
        args.extend(['duplicate', '%s%%' % format_number(duplicate_percent)])
    if reorder_percent:
        args.extend(['reorder', '%s%%' % format_number(reorder_percent)])
    if rate:
        args.extend(['rate', rate])
    return args


def _u32_address(network, side):
    return ['match', 'ip' if network.version == 4 else 'ip6', side, network.with_prefixlen]


def _u32_port(version, side, port):
    return ['match', 'ip' if version == 4 else 'ip6', side, str(port), '0xffff']


def _u32_tcp(version):
    return ['match', 'ip' if version == 4 else 'ip6', 'protocol', '6', '0xff']


def _filter(interface, handle, purpose, version, matches, band):
    return (['tc', 'filter', 'add', 'dev', interface, 'parent', '%x:' % handle,
             'protocol', 'ip' if version == 4 else 'ipv6', 'prio', str(FILTER_PRIO[(purpose, version)]), 'u32']
            + matches + ['flowid', '%x:%d' % (handle, band)])


def tc_needs_prio(destinations=None, sources=None, ports=None, exclude_ports=None, spared=None):
    """Whether netem must sit under a prio qdisc (anything scoped or spared) rather than at the root."""
    return bool(destinations or sources or ports or exclude_ports or spared)


def tc_commands(interface, handle, netem, destinations=None, sources=None, ports=None, exclude_ports=None,
                spared=None):
    """The ``tc`` argv lists that add the fault, in order.

    ``handle`` is the root qdisc's major number (the fault owns it and, when scoped, ``handle + 1``
    for netem); ``netem`` the option words from :func:`netem_args`; ``destinations``/``sources``
    ``ipaddress`` networks; ``spared`` a list of control channels ``{address, port}``.
    """
    if not tc_needs_prio(destinations, sources, ports, exclude_ports, spared):
        return [['tc', 'qdisc', 'add', 'dev', interface, 'root', 'handle', '%x:' % handle, 'netem'] + list(netem)]
    scoped = bool(destinations or sources or ports)
    priomap = PRIOMAP_DEFAULT if scoped else PRIOMAP_ALL_FAULTED
    commands = [
        ['tc', 'qdisc', 'add', 'dev', interface, 'root', 'handle', '%x:' % handle, 'prio',
         'bands', str(PRIO_BANDS), 'priomap'] + [str(b) for b in priomap],
        ['tc', 'qdisc', 'add', 'dev', interface, 'parent', '%x:%d' % (handle, FAULT_BAND),
         'handle', '%x:' % (handle + 1), 'netem'] + list(netem),
    ]
    for version in (4, 6):
        for channel in spared or []:
            network = parse_network('control_channel', channel['address'])
            if network.version != version:
                continue
            # From the target, the controller is the destination and sshd's port the source.
            commands.append(_filter(interface, handle, 'spare', version,
                                    _u32_address(network, 'dst') + _u32_tcp(version)
                                    + _u32_port(version, 'sport', channel['port']), SPARED_BAND))
        for port in exclude_ports or []:
            for side in ('sport', 'dport'):
                commands.append(_filter(interface, handle, 'spare', version, _u32_port(version, side, port),
                                        SPARED_BAND))
    if not scoped:
        return commands
    for version in (4, 6):
        address_matches = ([_u32_address(n, 'dst') for n in destinations or [] if n.version == version]
                           + [_u32_address(n, 'src') for n in sources or [] if n.version == version])
        if (destinations or sources) and not address_matches:
            continue
        port_matches = [_u32_port(version, side, p) for p in ports or [] for side in ('dport', 'sport')]
        for address in address_matches or [[]]:
            for port in port_matches or [[]]:
                commands.append(_filter(interface, handle, 'select', version, address + port, FAULT_BAND))
    return commands


def _time_ms(text):
    match = TIME_RE.match(text)
    if not match:
        return None
    return round(float(match.group(1)) * TIME_UNITS_MS[match.group(2)], 3)


def _percent(text):
    match = PERCENT_RE.match(text)
    return float(match.group(1)) if match else None


def parse_netem_options(text):
    """The netem settings in the options text of a ``tc qdisc show`` line."""
    words = text.split()
    found = {}
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1:]
        if word == 'limit' and following:
            found['limit'] = int(following[0])
            index += 2
            continue
        if word == 'delay' and following:
            found['delay_ms'] = _time_ms(following[0])
            index += 2
            if index < len(words) and _time_ms(words[index]) is not None:
                found['jitter_ms'] = _time_ms(words[index])
                index += 1
                if index < len(words) and _percent(words[index]) is not None:
                    found['correlation_percent'] = _percent(words[index])
                    index += 1
            continue
        if word in ('loss', 'corrupt', 'duplicate', 'reorder') and following:
            if following[0] == 'random':
                following = following[1:]
                index += 1
            if following and _percent(following[0]) is not None:
                found['%s_percent' % word] = _percent(following[0])
                index += 2
                continue
        if word == 'rate' and following:
            found['rate'] = following[0]
            index += 2
            continue
        index += 1
    return found


def parse_qdisc_show(text):
    """``tc qdisc show`` output as a list of dicts: kind, handle (``'8001:'``), major (int), dev,
    parent (``'root'`` or ``'8001:4'``), options (the rest) and, for netem, ``netem`` settings."""
    qdiscs = []
    for line in text.splitlines():
        match = QDISC_RE.match(line.strip())
        if not match:
            continue
        parent = match.group('parent')
        handle = match.group('handle')
        entry = dict(kind=match.group('kind'), handle=handle, major=int(handle[:-1] or '0', 16),
                     dev=match.group('dev'), parent='root' if parent == 'root' else parent.split()[1],
                     options=match.group('rest').strip())
        if entry['kind'] == 'netem':
            entry['netem'] = parse_netem_options(entry['options'])
        qdiscs.append(entry)
    return qdiscs


def root_qdisc(qdiscs):
    for qdisc in qdiscs:
        if qdisc['parent'] == 'root':
            return qdisc
    return None


def free_handle(qdiscs, preferred):
    """A qdisc major number, near ``preferred``, free together with the next one (netem's)."""
    used = set(q['major'] for q in qdiscs)
    candidate = preferred
    for _attempt in range(0x10000):
        if 0 < candidate < 0xfffe and candidate not in used and candidate + 1 not in used:
            return candidate
        candidate = (candidate + 2) % 0xfffe
    raise ValueError('no free qdisc handle')


# ---------------------------------------------------------------- nftables

def _nft_set(name, kind, elements):
    flags = ' flags interval;' if kind != 'inet_service' else ''
    return '\tset %s {\n\t\ttype %s;%s\n\t\telements = { %s }\n\t}' % (name, kind, flags, ', '.join(elements))


def nft_ruleset(table, directions, loss_percent=None, partition=False, destinations=None, sources=None,
                ports=None, exclude_ports=None, interface=None, spared=None, forwarded=False, queue_num=None):
    """The whole table of one fault as ``nft -f`` input.

    ``directions`` is a subset of ('egress', 'ingress'); ``destinations``/``sources`` are
    ``ipaddress`` networks; ``spared`` a list of control channels ``{address, port}``;
    ``forwarded`` adds a forward hook for traffic the host routes or bridges (containers).
    Loopback is left alone unless ``interface`` names it. With ``queue_num`` the selected packets
    go to that queue (with bypass: they pass when no one listens) instead of being dropped.
    """
    if not partition and not loss_percent and queue_num is None:
        raise ValueError('nothing to do: neither partition, loss_percent nor queue_num')
    sets = []
    address_rules = []
    for attr, networks in (('daddr', destinations), ('saddr', sources)):
        field = 'destinations' if attr == 'daddr' else 'sources'
        for version, family, kind in ((4, 'ip', 'ipv4_addr'), (6, 'ip6', 'ipv6_addr')):
            members = [n.with_prefixlen if n.num_addresses > 1 else str(n.network_address)
                       for n in networks or [] if n.version == version]
            if members:
                name = '%s_v%d' % (field, version)
                sets.append(_nft_set(name, kind, members))
                address_rules.append('%s %s @%s' % (family, attr, name))
    if ports:
        sets.append(_nft_set('ports', 'inet_service', [str(p) for p in ports]))
    if exclude_ports:
        sets.append(_nft_set('exclude_ports', 'inet_service', [str(p) for p in exclude_ports]))

    steps = []
    if address_rules:
        steps.append(('select_addresses', address_rules))
    if ports:
        steps.append(('select_ports', ['meta l4proto { tcp, udp } th dport @ports',
                                       'meta l4proto { tcp, udp } th sport @ports']))
    if queue_num is not None:
        verdict = ['counter queue num %d bypass' % queue_num]
    elif partition:
        verdict = ['counter drop']
    elif float(loss_percent).is_integer():
        verdict = ['numgen random mod 100 < %d counter drop' % int(loss_percent)]
    else:
        verdict = ['numgen random mod 10000 < %d counter drop' % int(round(loss_percent * 100))]
    chains = []
    for index, (name, matches) in enumerate(steps):
        following = steps[index + 1][0] if index + 1 < len(steps) else 'fault'
        chains.append((name, None, ['%s goto %s' % (m, following) for m in matches]))
    chains.append(('fault', None, verdict))

    entry = steps[0][0] if steps else 'fault'
    for direction in ('egress', 'ingress'):
        if direction not in directions:
            continue
        hook, iface_key, peer, local = (('output', 'oifname', 'daddr', 'sport') if direction == 'egress'
                                        else ('input', 'iifname', 'saddr', 'dport'))
        rules = []
        for channel in spared or []:
            family = 'ip' if parse_network('control_channel', channel['address']).version == 4 else 'ip6'
            rules.append('%s %s %s tcp %s %d accept comment "control channel"'
                         % (family, peer, channel['address'], local, channel['port']))
        if exclude_ports:
            rules.append('meta l4proto { tcp, udp } th sport @exclude_ports accept')
            rules.append('meta l4proto { tcp, udp } th dport @exclude_ports accept')
        if interface:
            rules.append('%s "%s" jump %s' % (iface_key, interface, entry))
        else:
            rules.append('%s "lo" accept' % iface_key)
            rules.append('jump %s' % entry)
        chains.insert(0, (direction, 'type filter hook %s priority %d; policy accept;' % (hook, NFT_PRIORITY), rules))
    if forwarded:
        rules = []
        if exclude_ports:
            rules.append('meta l4proto { tcp, udp } th sport @exclude_ports accept')
            rules.append('meta l4proto { tcp, udp } th dport @exclude_ports accept')
        if interface:
            rules.append('iifname != "%s" oifname != "%s" accept' % (interface, interface))
        rules.append('jump %s' % entry)
        chains.insert(0, ('forward', 'type filter hook forward priority %d; policy accept;' % NFT_PRIORITY, rules))
    order = {'egress': 0, 'ingress': 1, 'forward': 2}
    chains.sort(key=lambda c: order.get(c[0], 3))

    parts = list(sets)
    for name, header, rules in chains:
        body = ([header] if header else []) + rules
        parts.append('\tchain %s {\n%s\n\t}' % (name, '\n'.join('\t\t' + line for line in body)))
    return 'table %s %s {\n%s\n}\n' % (TABLE_FAMILY, table, '\n'.join(parts))


def nft_delete_script():
    """The revert of an nftables fault, for ``sh -c``; the env holds CHAOS_TABLE, CHAOS_NETNS
    (may be empty) and the tools' paths CHAOS_NFT and CHAOS_IP.

    Declaring the table and deleting it in one transaction is a no-op when it is already gone, so
    the revert is idempotent and still reports a real failure. A namespace that no longer exists
    took its tables with it.
    """
    return ('if [ -n "$CHAOS_NETNS" ]; then\n'
            '  [ -e "/run/netns/$CHAOS_NETNS" ] || exit 0\n'
            '  set -- "${CHAOS_IP:-ip}" netns exec "$CHAOS_NETNS"\n'
            'fi\n'
            'printf "table %s %%s\\ndelete table %s %%s\\n" "$CHAOS_TABLE" "$CHAOS_TABLE" | "$@" "${CHAOS_NFT:-nft}" -f -\n'
            % (TABLE_FAMILY, TABLE_FAMILY))


def tc_delete_script():
    """The revert of a tc fault, for ``sh -c``; the env holds CHAOS_DEV, CHAOS_HANDLE (hex major,
    no colon), CHAOS_NETNS (may be empty), CHAOS_TC and CHAOS_IP. It deletes the root qdisc only
    while that still carries the fault's handle; a device or namespace that is gone took it along."""
    return ('if [ -n "$CHAOS_NETNS" ]; then\n'
            '  [ -e "/run/netns/$CHAOS_NETNS" ] || exit 0\n'
            '  set -- "${CHAOS_IP:-ip}" netns exec "$CHAOS_NETNS"\n'
            'fi\n'
            '"$@" "${CHAOS_TC:-tc}" qdisc show dev "$CHAOS_DEV" root 2>/dev/null'
            ' | grep -q "^qdisc [a-z_]* $CHAOS_HANDLE: " || exit 0\n'
            'exec "$@" "${CHAOS_TC:-tc}" qdisc del dev "$CHAOS_DEV" root handle "$CHAOS_HANDLE:"\n')


def parse_nft_table_json(text):
    """``nft -j list table ...`` output summarised: chains (names), sets (names), rules (count),
    drop_rules (count of rules that drop)."""
    data = json.loads(text)
    summary = dict(chains=[], sets=[], rules=0, drop_rules=0)
    for item in data.get('nftables', []):
        if 'chain' in item:
            summary['chains'].append(item['chain']['name'])
        elif 'set' in item:
            summary['sets'].append(item['set']['name'])
        elif 'rule' in item:
            summary['rules'] += 1
            if any('drop' in expr for expr in item['rule'].get('expr', [])):
                summary['drop_rules'] += 1
    return summary


# ---------------------------------------------------------------- nfqueue (iptables NFQUEUE)

def ipt_chain_base(fault_id):
    """The stem of the iptables chains a fault owns: ``MCHAOS-<crc32 of the fault id>`` (chain names
    are limited to 28 characters; the suffixes -O, -I, -S name the egress, ingress and select chains)."""
    return '%s%08x' % (IPT_CHAIN_PREFIX, zlib.crc32(fault_id.encode('utf-8')) & 0xffffffff)


def ipt_chains(base, directions):
    """``(hooks, chains)``: ``{hook: chain}`` for the built-in chains that jump to the fault's own,
    and every chain the fault owns, in the order they are flushed and deleted."""
    hooks = dict((IPT_HOOKS[d], base + IPT_SUFFIX[d]) for d in ('egress', 'ingress') if d in directions)
    return hooks, [hooks[h] for h in sorted(hooks, reverse=True)] + [base + IPT_SUFFIX['select']]


def ipt_queue_rules(base, version, directions, queue_num, destinations=None, sources=None, ports=None,
                    exclude_ports=None, interface=None, spared=None):
    """The argv tails (after ``iptables``/``ip6tables``) that queue the selected packets of one IP
    version to ``queue_num``, in order; ``[]`` when the addresses selected hold none of this version.

    Mirrors :func:`nft_ruleset`: a direction chain per hook returns what is spared (the control
    channel, ``exclude_ports``, other interfaces or the loopback) and jumps to the select chain for
    the selected addresses; the select chain queues (with ``ports``: only those ports) with
    ``--queue-bypass``, so packets pass when no one listens. The jumps from the built-in chains are
    inserted last, once the fault's chains are complete, and removed first by the revert.
    """
    picked_dst = [n for n in destinations or [] if n.version == version]
    picked_src = [n for n in sources or [] if n.version == version]
    if (destinations or sources) and not (picked_dst or picked_src):
        return []
    table = ['-w', '-t', IPT_TABLE]
    select = base + IPT_SUFFIX['select']
    queue = ['-j', 'NFQUEUE', '--queue-num', str(queue_num), '--queue-bypass']
    commands = [table + ['-N', select]]
    if ports:
        for proto in ('tcp', 'udp'):
            for side in ('--dport', '--sport'):
                for port in ports:
                    commands.append(table + ['-A', select, '-p', proto, '-m', proto, side, str(port)] + queue)
    else:
        commands.append(table + ['-A', select] + queue)
    hooks = []
    for direction in ('egress', 'ingress'):
        if direction not in directions:
            continue
        chain = base + IPT_SUFFIX[direction]
        iface_flag, peer_flag, local_flag = ('-o', '-d', '--sport') if direction == 'egress' else ('-i', '-s', '--dport')
        commands.append(table + ['-N', chain])
        for channel in spared or []:
            if parse_network('control_channel', channel['address']).version != version:
                continue
            commands.append(table + ['-A', chain, '-p', 'tcp', peer_flag, channel['address'], '-m', 'tcp',
                                     local_flag, str(channel['port']), '-j', 'RETURN'])
        for proto in ('tcp', 'udp'):
            for side in ('--sport', '--dport'):
                for port in exclude_ports or []:
                    commands.append(table + ['-A', chain, '-p', proto, '-m', proto, side, str(port), '-j', 'RETURN'])
        if interface:
            commands.append(table + ['-A', chain, '!', iface_flag, interface, '-j', 'RETURN'])
        else:
            commands.append(table + ['-A', chain, iface_flag, 'lo', '-j', 'RETURN'])
        for network in picked_dst:
            commands.append(table + ['-A', chain, '-d', network.with_prefixlen, '-j', select])
        for network in picked_src:
            commands.append(table + ['-A', chain, '-s', network.with_prefixlen, '-j', select])
        if not (picked_dst or picked_src):
            commands.append(table + ['-A', chain, '-j', select])
        hooks.append(table + ['-I', IPT_HOOKS[direction], '1', '-j', chain])
    return commands + hooks


def ipt_delete_script():
    """The revert of the queue rules, for ``sh -c``; the env holds CHAOS_IPTABLES (the tools'
    paths, space-separated), CHAOS_HOOKS (``HOOK=CHAIN`` words), CHAOS_CHAINS, CHAOS_NETNS (may be
    empty) and CHAOS_IP. The jumps go first (traffic stops entering the queue), then the chains are
    flushed and deleted; what is already gone is skipped, so the revert is idempotent and still
    reports a real failure."""
    return ('if [ -n "$CHAOS_NETNS" ]; then\n'
            '  [ -e "/run/netns/$CHAOS_NETNS" ] || exit 0\n'
            '  set -- "${CHAOS_IP:-ip}" netns exec "$CHAOS_NETNS"\n'
            'fi\n'
            'status=0\n'
            'for tool in $CHAOS_IPTABLES; do\n'
            '  for hook in $CHAOS_HOOKS; do\n'
            '    while "$@" "$tool" -w -t %(table)s -C "${hook%%%%=*}" -j "${hook#*=}" 2>/dev/null; do\n'
            '      "$@" "$tool" -w -t %(table)s -D "${hook%%%%=*}" -j "${hook#*=}" || { status=1; break; }\n'
            '    done\n'
            '  done\n'
            '  for step in -F -X; do\n'
            '    for chain in $CHAOS_CHAINS; do\n'
            '      if "$@" "$tool" -w -t %(table)s -n -L "$chain" >/dev/null 2>&1; then\n'
            '        "$@" "$tool" -w -t %(table)s "$step" "$chain" || status=1\n'
            '      fi\n'
            '    done\n'
            '  done\n'
            'done\n'
            'exit $status\n' % dict(table=IPT_TABLE))


def is_loopback(network):
    return network.is_loopback or (network.version == 4 and network.subnet_of(ipaddress.ip_network(u'127.0.0.0/8')))


def selection_matches_nothing(interface, destinations, sources, local_networks):
    """Why an address selection can select no packet on ``interface`` (None when it can).

    On the loopback only the host's own addresses travel (``local_networks``: the loopback nets
    and the addresses of the host's interfaces); loopback addresses never cross another interface,
    and without ``interface`` the loopback is left alone.
    """
    selected = list(destinations or []) + list(sources or [])
    if not selected:
        return None
    if interface == 'lo':
        local = [n for n in selected
                 if is_loopback(n) or any(n.version == m.version and n.overlaps(m) for m in local_networks)]
        if not local:
            return ('on interface lo only this host\'s own addresses travel, and none of %s is one'
                    % ', '.join(n.with_prefixlen for n in selected))
        return None
    if all(is_loopback(n) for n in selected):
        where = 'interface %s' % interface if interface else 'the non-loopback interfaces (no `interface` given)'
        return ('%s are loopback addresses, which never cross %s; set `interface: lo`'
                % (', '.join(n.with_prefixlen for n in selected), where))
    return None


RATE_MULTIPLIERS = {'bit': 1, 'kbit': 1e3, 'mbit': 1e6, 'gbit': 1e9, 'tbit': 1e12,
                    'bps': 8, 'kbps': 8e3, 'mbps': 8e6, 'gbps': 8e9, 'tbps': 8e12}


def rate_bits_per_second(rate):
    """A rate from :func:`parse_rate` (``1mbit``, ``500kbps``) in bits per second, as tc reads it."""
    match = RATE_RE.match(rate)
    return float(match.group(1)) * RATE_MULTIPLIERS[match.group(2).lower()]


def parse_ip_addresses(text):
    """The networks in ``ip -o addr show`` output (``inet 10.0.0.5/24`` and ``inet6 fd00::1/64`` words)."""
    found = []
    for line in text.splitlines():
        words = line.split()
        for index, word in enumerate(words[:-1]):
            if word in ('inet', 'inet6'):
                found.append(ipaddress.ip_interface(u'%s' % words[index + 1]).network)
    return found


QUEUE_NUM_RE = re.compile(r'(?:--queue-num|\bqueue(?: flags [a-z,]+)? (?:num|to))\s+([0-9]+)(?:\s*-\s*([0-9]+))?')


def queue_nums_in_rules(text):
    """The queue numbers named by rules in ``iptables-save`` or ``nft list ruleset`` output
    (``--queue-num 7``, ``queue num 7``, ``queue to 7-9``)."""
    used = set()
    for first, last in QUEUE_NUM_RE.findall(text):
        used.update(range(int(first), int(last or first) + 1))
    return used


def free_queue_num(used, preferred, first, span):
    """A queue number in ``[first, first + span)`` not in ``used``, starting at ``preferred``."""
    for offset in range(span):
        candidate = first + (preferred - first + offset) % span
        if candidate not in used:
            return candidate
    raise ValueError('no free queue number in %d-%d' % (first, first + span - 1))
