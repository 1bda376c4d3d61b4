#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_netem
short_description: Inject network faults (latency, loss, corruption, partitions) with tc netem, nftables or NFQUEUE
version_added: 0.1.0
description:
  - Degrades or cuts the network of a host for a bounded time, optionally only for traffic to or
    from given CIDRs or ports, and reverts it at the deadline even if the controller never comes back.
  - Three backends. V(tc) puts a netem qdisc on the egress of O(interface) and does latency, jitter,
    loss, corruption, duplication, reordering and rate limits; it needs the kernel's C(sch_netem)
    (and C(sch_prio) when the fault is scoped or spares traffic). V(nftables) adds one table of its
    own and does random loss and partitions (dropping all selected traffic), in either direction.
    V(nfqueue) works without C(sch_netem) - a rule queues the selected packets, in either direction, to
    a queue number the fault owns (with the bypass flag, so they pass normally when no one listens),
    and a userspace delayer the fault starts holds each one for O(delay_ms) +- O(jitter_ms) (optionally
    correlated) before it lets it go; it also drops (O(loss_percent)) and limits the rate (O(rate)).
    The rule is nftables' C(queue) statement where the kernel has C(nft_queue), else iptables'
    C(NFQUEUE) target (chosen by probing, in a throwaway network namespace).
  - O(backend=auto) uses V(nftables) for loss and partitions alone. For anything else it uses V(tc)
    when the kernel has C(sch_netem) and the request suits it (egress, an O(interface)), else V(nfqueue)
    when that can do what is asked. The backend chosen is in RV(plan) and RV(details). When the
    backend cannot do what is asked (corruption without C(sch_netem), a delay on V(nftables), ingress
    on V(tc)) the module fails before injecting anything, says why and what would work.
  - The fault owns only what it adds, its own root qdisc handle, its own nftables table
    C(inet magsasa_chaos_<fault_id>), or its own iptables chains C(MCHAOS-<hash of fault_id>-*) in
    the C(mangle) table with the jumps to them, and its queue number and delayer process; its revert
    removes only that. It refuses to replace a root qdisc it did not add or to take a queue number
    in use.
  - 'With V(nfqueue) the revert removes the rule first, then stops the delayer (which lets every
    packet it holds go), so no packet waits in a queue without a reader. The guard watches the
    delayer: if it dies (killed), traffic flows undelayed (bypass), and the guard removes the rule at
    once and records the fault as ended early (RV(ended) of a later O(state=absent)). The delayer''s
    own hold times (p50, p95, p99) and counters come back when the fault is reverted (RV(final_effects)).'
  - 'Selection: a packet is selected when its destination is in O(destinations) or its source is in
    O(sources) (no address list: any address) and, with O(ports), when its TCP or UDP source or
    destination port is one of them.'
  - The control channel is spared. With O(spare_control_channel=true) (the default) the controller's
    SSH connection (the address and sshd port from C(SSH_CONNECTION) of the module or of its parent
    processes, or O(control_channel)) is accepted before any rule that drops or delays. If the link
    is lost anyway, a O(lease) reverts the fault when the controller stops renewing it.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
attributes:
  check_mode:
    description: Validates, chooses the backend, and returns the plan (the tc commands or the nftables ruleset); adds nothing.
  diff_mode:
    description: Nothing to diff; the rules or qdiscs added are returned in RV(details).
  idempotent:
    description: An identical active fault (same O(fault_id) or same options) is not injected twice; its lease is renewed.
options:
  interface:
    description:
      - The network interface. Required for the V(tc) backend, whose qdisc sits on its egress.
      - With V(nftables) and V(nfqueue), only traffic through this interface is selected; without it, traffic
        through every interface except the loopback is.
    type: str
  netns:
    description:
      - Act inside this named network namespace (C(ip netns exec)), for example a test namespace or one of a container.
    type: str
  backend:
    description:
      - V(tc) for netem, V(nftables) for loss and partitions, V(nfqueue) for delay, loss and rate limits
        without netem, V(auto) to choose from the request and the kernel.
    type: str
    choices: [auto, tc, nftables, nfqueue]
    default: auto
  queue_num:
    description:
      - The netfilter queue number, 0-65535, of the V(nfqueue) backend. The module refuses one that
        a listener or a rule on the host already uses.
      - Without it a free number from 28672-32767 is picked at injection (RV(details.queue_num)).
    type: int
  direction:
    description:
      - Which traffic is affected. V(tc) only shapes V(egress).
      - Defaults to V(both) with O(partition=true) and V(egress) otherwise.
    type: str
    choices: [egress, ingress, both]
  delay_ms:
    description:
      - Added latency in milliseconds, per packet (V(tc) and V(nfqueue); at most 60000 with V(nfqueue)).
    type: float
  jitter_ms:
    description:
      - Random variation of the delay in milliseconds, uniform within +- O(jitter_ms) (V(tc) and
        V(nfqueue), where it is at most O(delay_ms)). Needs O(delay_ms).
    type: float
  correlation_percent:
    description:
      - How much each delay depends on the previous one, 0-100 (V(tc) and V(nfqueue)). Needs O(jitter_ms).
    type: float
  loss_percent:
    description:
      - Share of the selected packets dropped at random, 0-100 (every backend).
    type: float
  corrupt_percent:
    description:
      - Share of the selected packets with a flipped bit, 0-100 (V(tc) only).
    type: float
  duplicate_percent:
    description:
      - Share of the selected packets sent twice, 0-100 (V(tc) only).
    type: float
  reorder_percent:
    description:
      - Share of the selected packets sent at once, ahead of the delayed others, 0-100 (V(tc) only). Needs O(delay_ms).
    type: float
  rate:
    description:
      - Bandwidth limit as a number and unit, for example V(1mbit), V(512kbit), V(10mbps) (V(tc) and V(nfqueue)).
    type: str
  partition:
    description:
      - Drop all selected traffic (a blackhole, a partition, a region outage). V(nftables) only, and not
        combined with the other faults.
    type: bool
    default: false
  destinations:
    description:
      - Select packets whose destination address is in one of these addresses or CIDRs.
      - Names are not resolved; give addresses (an inventory's C(ansible_host) when it holds one, or facts such as
        C(ansible_default_ipv4.address)).
    type: list
    elements: str
    default: []
  sources:
    description:
      - Select packets whose source address is in one of these addresses or CIDRs.
      - To cut a host off from a group both ways, give the group's addresses as O(destinations) and O(sources).
    type: list
    elements: str
    default: []
  ports:
    description:
      - Select only TCP and UDP packets whose source or destination port is one of these.
    type: list
    elements: int
    default: []
  exclude_ports:
    description:
      - Never select TCP or UDP packets whose source or destination port is one of these.
    type: list
    elements: int
    default: []
  forwarded:
    description:
      - Also select traffic the host forwards, such as the traffic of containers on a bridge, of
        virtual machines, or of a router (V(nftables), in a forward hook, whatever O(direction); not V(nfqueue)).
      - V(tc) shapes everything leaving O(interface), forwarded or not, so this option changes nothing there.
    type: bool
    default: false
  spare_control_channel:
    description:
      - Accept the controller's SSH connection before any rule of the fault, so Ansible keeps its link to the host.
      - Set V(false) only when cutting the control channel too is the point of the experiment; the
        fault then still ends at its deadline or lease.
    type: bool
    default: true
  control_channel:
    description:
      - The control channel to spare, when C(SSH_CONNECTION) does not tell it (for example behind a
        bastion or with another connection plugin).
    type: dict
    suboptions:
      address:
        description:
          - The address the controller's connection comes from, as the target sees it.
        type: str
        required: true
      port:
        description:
          - The port of the target's sshd.
        type: int
        default: 22
requirements:
  - C(nft) (nftables) for the V(nftables) backend; C(tc) (iproute2) and the kernel's C(sch_netem) for V(tc).
  - For V(nfqueue) the kernel's C(nfnetlink_queue), and C(nft) with C(nft_queue) or C(iptables)/C(ip6tables)
    with the C(NFQUEUE) target. The delayer is Python 3.8+ standard library only, copied into O(state_dir).
  - C(ip) (iproute2) and C(unshare) (util-linux) to check interfaces and probe the kernel.
  - root, or CAP_NET_ADMIN.
notes:
  - V(tc) and V(nfqueue) probe the kernel in a throwaway network namespace before injecting.
  - 'V(nfqueue) adds latency per packet: a TCP connect whose SYN is selected takes O(delay_ms) longer; an
    HTTP request over a new connection with O(ports) selected on the loopback crosses it four times (SYN,
    SYN-ACK, request, response). The delayer sustains several thousand packets per second; beyond its
    queue length the queue fails open (packets pass undelayed) rather than dropping. It asks for the
    real-time round-robin class at the lowest priority (else nice -10), so that it wakes on time on a
    busy host; it sleeps between releases.'
  - The nftables chains accept what they do not drop; rules of other tables still apply as before.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: 200 ms +- 20 ms of latency on eth0 for 60 seconds (tc netem)
  magsasa.chaos.chaos_netem:
    interface: eth0
    delay_ms: 200
    jitter_ms: 20
    duration: 60

- name: 15 % packet loss towards the database subnet, lease renewed by the experiment
  magsasa.chaos.chaos_netem:
    loss_percent: 15
    destinations: [10.20.0.0/24]
    duration: 300
    lease: 30
  register: chaos_netem_loss

- name: Cut this host off from PostgreSQL, keeping everything else
  magsasa.chaos.chaos_netem:
    partition: true
    ports: [5432]
    duration: 30

- name: Region outage - cut every host of region_a off from the other hosts, both ways
  magsasa.chaos.chaos_netem:
    partition: true
    destinations: "{{ chaos_other_hosts }}"
    sources: "{{ chaos_other_hosts }}"
    forwarded: true  # the containers on these hosts too
    duration: 120
    lease: 30
  vars:
    chaos_other_hosts: "{{ groups['all'] | difference(groups['region_a']) | map('extract', hostvars, 'ansible_host') | list }}"
  when: inventory_hostname in groups['region_a']

- name: 200 ms +- 20 ms on packets to the API port, on a kernel without sch_netem (userspace delayer)
  magsasa.chaos.chaos_netem:
    backend: nfqueue
    interface: lo
    ports: [8080]
    delay_ms: 200
    jitter_ms: 20
    duration: 60
  register: chaos_netem_delay

- name: Revert it and read the latency the delayer added
  magsasa.chaos.chaos_netem:
    state: absent
    fault_id: "{{ chaos_netem_delay.fault_id }}"
  register: chaos_netem_delay_end
  # chaos_netem_delay_end.final_effects[fault_id].hold.p50_ms is the median hold per packet

- name: Revert the loss fault early
  magsasa.chaos.chaos_netem:
    state: absent
    fault_id: "{{ chaos_netem_loss.fault_id }}"

- name: Behind a bastion, say which connection to spare
  magsasa.chaos.chaos_netem:
    partition: true
    control_channel:
      address: 10.0.0.2
      port: 22
    duration: 60
'''

RETURN = r'''
fault_id:
  description: The fault's id.
  returned: always
  type: str
  sample: netem-3f9a1c2b7d
kind:
  description: The fault kind, V(netem).
  returned: when O(state=present)
  type: str
plan:
  description:
    - What the fault does - the backend, the direction, what is spared, and the tc commands or the nftables ruleset.
    - Before injection the ruleset names the table with the fault id, or C(FAULT_ID) while none is generated yet.
  returned: when O(state=present)
  type: dict
details:
  description: What was added.
  returned: when O(state=present) and not in check mode
  type: dict
  contains:
    backend:
      description: V(tc), V(nftables) or V(nfqueue).
      type: str
    queue_rule:
      description: How V(nfqueue) queues packets, V(nftables) or V(iptables).
      type: str
    queue_num:
      description: The queue number the V(nfqueue) fault owns.
      type: int
    chains:
      description: The iptables chains the V(nfqueue) fault owns (in the C(mangle) table).
      type: list
      elements: str
    delayer:
      description: The V(nfqueue) delayer's settings (queue, delay, jitter, correlation, loss, rate in bit/s).
      type: dict
    watch:
      description: The helper processes the guard watches (C(name), C(pid), C(starttime)); the V(nfqueue) delayer.
      type: list
      elements: dict
    final_effect_file:
      description: Where the V(nfqueue) delayer writes its counters and hold times.
      type: str
    table:
      description: The nftables table, C(inet magsasa_chaos_<fault_id>).
      type: str
    ruleset:
      description: The nftables ruleset applied.
      type: str
    interface:
      description: The interface.
      type: str
    handle:
      description: The root qdisc handle the fault owns, like C(3a7:).
      type: str
    commands:
      description: The tc commands run, one argv list each.
      type: list
      elements: list
    spared:
      description: The control channels accepted before the fault's rules, C({address, port}) each.
      type: list
      elements: dict
    control_channel_source:
      description: Where the spared control channel came from (V(control_channel), C(SSH_CONNECTION ...), or V(none)).
      type: str
effect:
  description:
    - Measured after injection. V(nftables) - C(table), C(present), C(chains), C(sets), C(rules),
      C(drop_rules). V(tc) - C(interface), C(qdiscs) (the fault's own, as parsed from C(tc qdisc show)), C(filters).
      V(nfqueue) - C(queue_num), C(queue_rule), C(listening) (a listener is bound to the queue), C(delayer_alive),
      C(rules) (count), C(delayer) (its counters so far).
  returned: when O(state=present) and not in check mode
  type: dict
started_at:
  description: Epoch seconds when the fault was injected.
  returned: when O(state=present)
  type: float
injected_at:
  description: Epoch seconds when the injection was complete (the moment the fault took effect; metrics count from here).
  returned: when O(state=present) and not in check mode
  type: float
start_slack:
  description:
    - Seconds this host waited for O(start_at) before injecting; below 0 when it was ready only after O(start_at)
      (the controller's lead was too short for it, and it injected late by that much).
  returned: success and O(start_at) given and not in check mode
  type: float
expires_at:
  description: Epoch seconds when the guard reverts the fault at the latest.
  returned: when O(state=present)
  type: float
lease_expires_at:
  description: Epoch seconds when an unrenewed lease reverts the fault, or null.
  returned: when O(state=present)
  type: float
renewed:
  description: Whether an identical active fault had its lease renewed instead of a new injection.
  returned: when an identical fault is active
  type: bool
guard_pid:
  description: The process id of the fault's guard.
  returned: when O(state=present) and not in check mode
  type: int
record:
  description: The path of the fault's record.
  returned: when O(state=present) and not in check mode
  type: str
state_dir:
  description: The fault state directory.
  returned: always
  type: str
active_faults:
  description:
    - In check mode, the faults already active on the host, summarised as M(magsasa.chaos.chaos_faults) lists them
      (C(fault_id), C(kind), C(expires_at), C(remaining), C(guard_alive) ...), so a dry run shows what the fault
      would run beside. A chaos run's preflight takes its first experiment's active-fault lock from it.
  returned: check mode with O(state=present)
  type: list
  elements: dict
backstops:
  description: What stands behind the guard for this fault.
  returned: success with O(state=present) when a new fault was injected, not in check mode
  type: dict
  contains:
    watchdog:
      description: How the state directory's watchdog was started (V(process), or V(systemd:<unit>) where systemd
        is PID 1), V(running) when one already ran, or null when it could not be started.
      type: str
    timer:
      description: The transient systemd timer that reverts the fault at its deadline if nothing else did, or null
        where systemd is not PID 1.
      type: str
reverted:
  description: The fault ids reverted.
  returned: when O(state=absent)
  type: list
  elements: str
final_effects:
  description:
    - What the reverted faults' helpers measured, by fault id. For V(nfqueue) the delayer's C(hold)
      (C(p50_ms), C(p95_ms), C(p99_ms) of the time it held each packet), C(received), C(accepted),
      C(dropped) (loss), C(overruns), C(max_held) and C(state).
  returned: when O(state=absent) reverted a fault with a helper
  type: dict
  sample: {"netem-3f9a1c2b7d": {"hold": {"p50_ms": 200.4, "p95_ms": 201.1, "p99_ms": 201.3}, "received": 412}}
ended:
  description:
    - When O(fault_id) names a fault that is already over, how it ended - C(fault_id), C(reverted_by)
      (V(guard:deadline), V(guard:lease-expired), C(guard:helper-exited:nfqueue delayer) when the delayer died
      early, ...), C(reverted_at) and C(final_effect).
  returned: when O(state=absent) and the fault had already ended
  type: dict
'''

import json
import os
import re
import shlex
import sys
import time
import zlib

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, FaultError, fault_argument_spec, fault_required_if, kill_action, run_fault_module, spawn_detached)
from ansible_collections.magsasa.chaos.plugins.module_utils import _guard, _netem, _nfqueue, _proc

MISSING_QDISC = 'Specified qdisc kind is unknown'
PROC_ANCESTORS = 32
NFQUEUE_OPTIONS = ('delay_ms', 'jitter_ms', 'correlation_percent', 'loss_percent', 'rate')
NFQUEUE_MAX_DELAY_MS = 60000.0
QUEUE_NUM_FIRST = 0x7000
QUEUE_NUM_SPAN = 0x1000
DELAYER_START_SECONDS = 10.0
DELAYER_GRACE_SECONDS = 30.0


def find_ssh_connection():
    """The control channel from SSH_CONNECTION of this process or its nearest ancestor that has it
    (become may clear the variable in the module's own environment)."""
    parsed = _netem.parse_ssh_connection(os.environ.get('SSH_CONNECTION'))
    if parsed:
        return parsed, 'SSH_CONNECTION'
    pid = os.getppid()
    for _attempt in range(PROC_ANCESTORS):
        if pid <= 1:
            break
        try:
            with open('/proc/%d/environ' % pid, 'rb') as handle:
                environ = handle.read().split(b'\0')
        except (IOError, OSError):
            break
        for entry in environ:
            if entry.startswith(b'SSH_CONNECTION='):
                parsed = _netem.parse_ssh_connection(entry.split(b'=', 1)[1].decode('utf-8', 'replace'))
                if parsed:
                    return parsed, 'SSH_CONNECTION of process %d' % pid
        pid = _proc.parent(pid)
        if pid is None:
            break
    return None, 'none'


def read_json(path):
    """A JSON file the delayer writes (atomically), or None while it is not there."""
    try:
        with open(path, 'r') as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def describe(options):
    """``{'delay_ms': 200.0}`` as "`delay_ms`=200" for messages."""
    return ', '.join('`%s`=%s' % (name, value if isinstance(value, str) else _netem.format_number(value))
                     for name, value in sorted(options.items()))


class NetemFault(Fault):
    """A network fault: validated and planned from the options, injected with the chosen backend."""

    kind = 'netem'

    def __init__(self, module):
        super(NetemFault, self).__init__(module)
        self.backend = None
        self.directions = ()
        self.destinations = []
        self.sources = []
        self.ports = []
        self.exclude_ports = []
        self.spared = []
        self.spared_source = 'none'
        self.rate = None
        self.qdiscs = []
        self.queue_rule = None
        self.ip_versions = ()

    # -- commands --------------------------------------------------------------------
    def bin(self, name, package):
        path = self.module.get_bin_path(name)
        if not path:
            self.fail('`%s` is needed and was not found on the target; install %s' % (name, package))
        return path

    def command(self, argv):
        """``argv`` inside O(netns) when one is given, with the tool's absolute path."""
        tools = {'nft': ('nft', 'nftables'), 'tc': ('tc', 'iproute2'), 'ip': ('ip', 'iproute2'),
                 'iptables': ('iptables', 'iptables'), 'ip6tables': ('ip6tables', 'iptables')}
        argv = [self.bin(*tools[argv[0]])] + list(argv[1:]) if argv[0] in tools else list(argv)
        if self.params['netns']:
            argv = [self.bin('ip', 'iproute2'), 'netns', 'exec', self.params['netns']] + argv
        return argv

    def run(self, argv, data=None):
        return self.module.run_command(self.command(argv), data=data, binary_data=data is not None)

    # -- validation ----------------------------------------------------------------
    def validate(self):
        try:
            self.validate_values()
        except _netem.NetemInputError as exc:
            self.fail(str(exc))
        self.choose_backend()
        self.check_host()

    def netem_settings(self):
        names = ('delay_ms', 'jitter_ms', 'correlation_percent', 'loss_percent', 'corrupt_percent',
                 'duplicate_percent', 'reorder_percent')
        settings = dict((name, self.params[name]) for name in names)
        settings['rate'] = self.rate
        return settings

    def requested(self):
        """The faults asked for, besides partition, as ``{option: value}``."""
        return dict((k, v) for k, v in self.netem_settings().items() if v)

    def validate_values(self):
        params = self.params
        for name in _netem.PERCENT_OPTIONS:
            _netem.check_percent(name, params[name])
        for name in ('delay_ms', 'jitter_ms'):
            _netem.check_non_negative(name, params[name])
        self.rate = _netem.parse_rate(params['rate'])
        if params['jitter_ms'] and not params['delay_ms']:
            raise _netem.NetemInputError('`jitter_ms` needs `delay_ms` (jitter varies a delay), got jitter_ms=%g without it'
                                         % params['jitter_ms'])
        if params['correlation_percent'] and not params['jitter_ms']:
            raise _netem.NetemInputError('`correlation_percent` needs `jitter_ms` (it correlates the jitter), got %g without it'
                                         % params['correlation_percent'])
        if params['reorder_percent'] and not params['delay_ms']:
            raise _netem.NetemInputError('`reorder_percent` needs `delay_ms` (reordered packets skip the delay), got %g without it'
                                         % params['reorder_percent'])
        requested = self.requested()
        if params['partition'] and requested:
            raise _netem.NetemInputError('`partition` drops every selected packet; it cannot be combined with %s'
                                         % describe(requested))
        if not params['partition'] and not requested:
            raise _netem.NetemInputError('nothing to inject: set `partition`, `loss_percent`, or one of %s'
                                         % ', '.join('`%s`' % o for o in _netem.TC_ONLY_OPTIONS))
        self.destinations = _netem.parse_networks('destinations', params['destinations'])
        self.sources = _netem.parse_networks('sources', params['sources'])
        self.ports, self.exclude_ports = _netem.check_ports(params['ports'], params['exclude_ports'])
        if params['netns'] is not None and not re.match(r'^[A-Za-z0-9_.-]+$', params['netns']):
            raise _netem.NetemInputError('`netns` must be a namespace name, got %r' % params['netns'])
        if params['interface'] is not None and not re.match(r'^[^\s/"]{1,15}$', params['interface']):
            raise _netem.NetemInputError('`interface` must be an interface name, got %r' % params['interface'])
        if params['control_channel'] and not params['spare_control_channel']:
            raise _netem.NetemInputError('`control_channel` is given but `spare_control_channel` is false; '
                                         'drop one of them')
        if params['spare_control_channel']:
            if params['control_channel']:
                channel = params['control_channel']
                self.spared = [_netem.control_channel(channel['address'], channel['port'])]
                self.spared_source = 'control_channel'
            else:
                found, self.spared_source = find_ssh_connection()
                self.spared = [found] if found else []
        direction = params['direction'] or ('both' if params['partition'] else 'egress')
        self.directions = ('egress', 'ingress') if direction == 'both' else (direction,)

    def probe_qdisc(self, kind):
        """Whether the kernel can create a ``kind`` qdisc: (True|False|None, detail). Tried in a
        throwaway network namespace, so nothing on the host is touched."""
        if os.path.isdir('/sys/module/sch_%s' % kind):
            return True, 'sch_%s is loaded' % kind
        unshare = self.module.get_bin_path('unshare')
        if not unshare:
            return None, 'unshare (util-linux) is missing, cannot probe for sch_%s' % kind
        argv = [unshare, '--net', self.bin('tc', 'iproute2'), 'qdisc', 'add', 'dev', 'lo', 'root']
        argv += ['netem', 'delay', '1ms'] if kind == 'netem' else ['prio', 'bands', str(_netem.PRIO_BANDS)]
        rc, out, err = self.module.run_command(argv)
        if rc == 0:
            return True, 'probed'
        if MISSING_QDISC in err:
            return False, 'kernel lacks sch_%s (tc: %s)' % (kind, err.strip())
        return None, 'could not probe for sch_%s: %s' % (kind, (err or out).strip())

    def choose_backend(self):
        params = self.params
        requested = self.requested()
        tc_wanted = dict((k, v) for k, v in requested.items() if k in _netem.TC_ONLY_OPTIONS)
        nfqueue_lacks = dict((k, v) for k, v in requested.items() if k not in NFQUEUE_OPTIONS)
        wanted_text = describe(tc_wanted)
        backend = params['backend']
        if backend == 'nftables' and tc_wanted:
            self.fail('%s cannot be done by the nftables backend: it only drops packets (`loss_percent`, `partition`). '
                      'Use backend=nfqueue (any kernel with nfnetlink_queue), backend=tc (needs the kernel\'s '
                      'sch_netem) or backend=auto' % wanted_text)
        if backend in ('tc', 'nfqueue') and params['partition']:
            self.fail('`partition` needs the nftables backend (backend=%s delays traffic, it does not cut it); '
                      'use backend=nftables or backend=auto' % backend)
        if backend == 'auto':
            backend = self.auto_backend(tc_wanted, nfqueue_lacks)
        self.backend = backend
        if backend == 'tc':
            self.check_tc(wanted_text)
        elif backend == 'nfqueue':
            self.check_nfqueue_request(nfqueue_lacks)

    def auto_backend(self, tc_wanted, nfqueue_lacks):
        """nftables for drops alone; for anything else tc netem when the kernel has it and the
        request suits it (egress of one interface), else the userspace nfqueue delayer when it can
        do what is asked; tc otherwise, whose checks then say what is missing."""
        if not tc_wanted:
            return 'nftables'
        tc_suits = self.directions == ('egress',) and bool(self.params['interface'])
        if tc_suits and all(available is not False for available, _detail in self.tc_probes().values()):
            return 'tc'
        if not nfqueue_lacks and not self.params['forwarded']:
            return 'nfqueue'
        return 'tc'

    def tc_probes(self):
        """``{kind: (available, detail)}`` for the qdiscs the tc backend needs, probed once."""
        if not hasattr(self, '_tc_probes'):
            kinds = ['netem']
            if _netem.tc_needs_prio(self.destinations, self.sources, self.ports, self.exclude_ports, self.spared):
                kinds.append('prio')
            self._tc_probes = dict((kind, self.probe_qdisc(kind)) for kind in kinds)
        return self._tc_probes

    def check_tc(self, wanted_text):
        params = self.params
        if self.directions != ('egress',):
            self.fail('`direction`=%s: the tc backend shapes egress only. For loss or a partition on ingress use '
                      'backend=nftables; for latency on ingress use backend=nfqueue, or inject it on the sending '
                      'host\'s egress' % params['direction'])
        for kind, (available, detail) in sorted(self.tc_probes().items()):
            if available is False:
                what = wanted_text or '`loss_percent`=%s on backend=tc' % _netem.format_number(params['loss_percent'])
                self.fail('%s needs tc netem, but this %s. What would work: backend=nfqueue (a userspace delayer '
                          'that needs no netem), load the module (modprobe sch_%s; some distributions ship it in an '
                          'extra kernel modules package such as linux-modules-extra-$(uname -r)), or ask only for '
                          '`loss_percent` or `partition`, which the nftables backend does without netem'
                          % (what, detail, kind), probe=detail)
        if not params['interface']:
            self.fail('`interface` is required for the tc backend (the netem qdisc sits on its egress)%s'
                      % ((' - needed for %s' % wanted_text) if wanted_text else ''))

    # -- the nfqueue backend -----------------------------------------------------------
    def check_nfqueue_request(self, nfqueue_lacks):
        """What the userspace delayer can do, and values in its range; no side effects."""
        params = self.params
        if nfqueue_lacks:
            self.fail('%s cannot be done by the nfqueue backend: it delays (`delay_ms`, `jitter_ms`, '
                      '`correlation_percent`), drops (`loss_percent`) and limits the rate (`rate`). Use backend=tc '
                      '(needs the kernel\'s sch_netem)' % describe(nfqueue_lacks))
        if params['forwarded']:
            self.fail('`forwarded` is not supported by the nfqueue backend (its rules sit in the input and output '
                      'hooks); inject the fault on the host that sends the traffic, or use backend=tc')
        delay, jitter = params['delay_ms'], params['jitter_ms']
        if delay is not None and not 0 < delay <= NFQUEUE_MAX_DELAY_MS:
            self.fail('`delay_ms` must be more than 0 and at most %s for backend=nfqueue, got %s'
                      % (_netem.format_number(NFQUEUE_MAX_DELAY_MS), _netem.format_number(delay)))
        if jitter and jitter > delay:
            self.fail('`jitter_ms` must be at most `delay_ms` for backend=nfqueue (a packet cannot leave before it '
                      'arrived), got jitter_ms=%s with delay_ms=%s'
                      % (_netem.format_number(jitter), _netem.format_number(delay)))
        queue_num = params['queue_num']
        if queue_num is not None and not 0 <= queue_num <= 65535:
            self.fail('`queue_num` must be 0-65535, got %d' % queue_num)
        self.ip_versions = tuple(v for v in (4, 6)
                                 if not (self.destinations or self.sources)
                                 or any(n.version == v for n in self.destinations + self.sources))
        self.queue_rule = self.probe_queue_rule()

    def probe_queue_rule(self):
        """nftables' ``queue`` statement where the kernel has nft_queue, else iptables' NFQUEUE
        target; both tried in a throwaway network namespace."""
        unshare = self.module.get_bin_path('unshare')
        if not unshare:
            self.fail('`unshare` (util-linux) is needed to probe how to queue packets; install util-linux')
        failures = []
        nft = self.module.get_bin_path('nft')
        if nft:
            rc, out, err = self.module.run_command([unshare, '--net', nft, '-f', '-'], data=(
                'table inet magsasa_chaos_probe { chain output { type filter hook output priority 0; '
                'queue num 0 bypass; } }\n'))
            if rc == 0:
                return 'nftables'
            failures.append('nft queue statement: %s' % ' '.join((err or out).split()))
        iptables_failures = []
        for tool, version in (('iptables', 4), ('ip6tables', 6)):
            if version not in self.ip_versions:
                continue
            path = self.module.get_bin_path(tool)
            if not path:
                iptables_failures.append('%s is not installed' % tool)
                continue
            rc, out, err = self.module.run_command([unshare, '--net', path, '-w', '-t', _netem.IPT_TABLE, '-A', 'OUTPUT',
                                                    '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass'])
            if rc != 0:
                iptables_failures.append('%s NFQUEUE target: %s' % (tool, ' '.join((err or out).split())))
        if not iptables_failures:
            return 'iptables'
        self.fail('backend=nfqueue cannot queue packets on this host: %s. It needs nftables with the kernel\'s '
                  'nft_queue, or iptables/ip6tables with the NFQUEUE target (xt_NFQUEUE)'
                  % '; '.join(failures + iptables_failures))

    def read_target_file(self, path):
        rc, out, err = self.run(['cat', path])
        return out if rc == 0 else None

    def queues_in_use(self):
        """Queue numbers with a listener, or named by a rule of the target's nftables/iptables."""
        used = set(_nfqueue.read_queue_table(self.read_target_file(_nfqueue.PROC_QUEUES) or ''))
        texts = []
        for tool in ('iptables-save', 'ip6tables-save'):
            if self.module.get_bin_path(tool):
                texts.append(self.run([self.module.get_bin_path(tool)])[1])
        if self.module.get_bin_path('nft'):
            texts.append(self.run(['nft', 'list', 'ruleset'])[1])
        used.update(_netem.queue_nums_in_rules('\n'.join(texts)))
        return used

    def check_nfqueue_host(self):
        """Read-only checks on the target: the kernel's queue, the addresses, the queue number."""
        if self.read_target_file(_nfqueue.PROC_QUEUES) is None:
            modprobe = self.module.get_bin_path('modprobe')
            if modprobe:
                self.module.run_command([modprobe, 'nfnetlink_queue'])
            if self.read_target_file(_nfqueue.PROC_QUEUES) is None:
                self.fail('backend=nfqueue needs the kernel\'s nfnetlink_queue (no %s, and modprobe nfnetlink_queue '
                          'did not load it); use backend=tc where the kernel has sch_netem' % _nfqueue.PROC_QUEUES)
        rc, out, err = self.run(['ip', '-o', 'addr', 'show'])
        reason = _netem.selection_matches_nothing(self.params['interface'], self.destinations, self.sources,
                                                  _netem.parse_ip_addresses(out) if rc == 0 else [])
        if reason:
            self.fail('the selection matches no packet: %s' % reason)
        queue_num = self.params['queue_num']
        if queue_num is not None and queue_num in self.queues_in_use():
            self.fail('`queue_num` %d is already in use (a listener or a rule on this host has it); choose another '
                      'or leave it out to get a free one' % queue_num)

    def check_host(self):
        """Read-only checks of the target before anything is injected."""
        netns = self.params['netns']
        if netns and not os.path.exists('/run/netns/%s' % netns):
            self.fail('`netns` %s does not exist (no /run/netns/%s); list them with `ip netns list`' % (netns, netns))
        interface = self.params['interface']
        if interface:
            rc, out, err = self.run(['ip', '-o', 'link', 'show', 'dev', interface])
            if rc != 0:
                rc, out, err = self.run(['ip', '-o', 'link', 'show'])
                names = [line.split(':')[1].strip().split('@')[0] for line in out.splitlines() if ':' in line]
                self.fail('`interface` %s does not exist%s; interfaces there: %s'
                          % (interface, ' in netns %s' % netns if netns else '', ', '.join(names)))
        if self.backend == 'nfqueue':
            self.check_nfqueue_host()
        if self.backend == 'tc':
            try:
                self.qdiscs = self.current_qdiscs()
            except FaultError as exc:
                self.fail(str(exc))
            self.check_root_qdisc(self.qdiscs)

    def current_qdiscs(self):
        rc, out, err = self.run(['tc', 'qdisc', 'show', 'dev', self.params['interface']])
        if rc != 0:
            raise FaultError('tc qdisc show dev %s failed: %s' % (self.params['interface'], err.strip()))
        return _netem.parse_qdisc_show(out)

    def check_root_qdisc(self, qdiscs):
        root = _netem.root_qdisc(qdiscs)
        if root and root['major'] != 0:
            self.fail('`interface` %s already has a root qdisc (%s %s) that this fault did not add; netem would '
                      'replace it. Remove it deliberately or choose another interface'
                      % (self.params['interface'], root['kind'], root['handle']))

    # -- plan ---------------------------------------------------------------------------
    def table(self, fault_id):
        return _netem.table_name(fault_id)

    def ruleset(self, table, queue_num=None):
        return _netem.nft_ruleset(table, self.directions, loss_percent=self.params['loss_percent'],
                                  partition=self.params['partition'], destinations=self.destinations,
                                  sources=self.sources, ports=self.ports, exclude_ports=self.exclude_ports,
                                  interface=self.params['interface'], spared=self.spared,
                                  forwarded=self.params['forwarded'], queue_num=queue_num)

    def ipt_commands(self, base, queue_num):
        """``[argv]`` for iptables then ip6tables, each starting with the tool's name."""
        commands = []
        for tool, version in (('iptables', 4), ('ip6tables', 6)):
            if version in self.ip_versions:
                commands.extend([tool] + argv for argv in _netem.ipt_queue_rules(
                    base, version, self.directions, queue_num, destinations=self.destinations, sources=self.sources,
                    ports=self.ports, exclude_ports=self.exclude_ports, interface=self.params['interface'],
                    spared=self.spared))
        return commands

    def delayer_config(self, queue_num, exit_at):
        params = self.params
        return dict(queue_num=queue_num, delay_ms=params['delay_ms'], jitter_ms=params['jitter_ms'],
                    correlation_percent=params['correlation_percent'], loss_percent=params['loss_percent'],
                    rate_bps=_netem.rate_bits_per_second(self.rate) if self.rate else None, exit_at=exit_at)

    def tc_commands(self, handle):
        return _netem.tc_commands(self.params['interface'], handle, _netem.netem_args(**self.netem_settings()),
                                  destinations=self.destinations, sources=self.sources, ports=self.ports,
                                  exclude_ports=self.exclude_ports, spared=self.spared)

    def plan(self):
        plan = dict(backend=self.backend, direction=list(self.directions), interface=self.params['interface'],
                    netns=self.params['netns'], spared=self.spared, control_channel_source=self.spared_source,
                    destinations=[n.with_prefixlen for n in self.destinations],
                    sources=[n.with_prefixlen for n in self.sources], ports=self.ports,
                    exclude_ports=self.exclude_ports, forwarded=self.params['forwarded'])
        if self.backend == 'nftables':
            plan['ruleset'] = self.ruleset(self.table(self.params['fault_id'] or 'FAULT_ID'))
        elif self.backend == 'nfqueue':
            # The queue number is picked at injection when not given (see details.queue_num).
            queue_num = self.params['queue_num'] if self.params['queue_num'] is not None else 'QUEUE_NUM'
            plan.update(queue_rule=self.queue_rule, delayer=self.delayer_config(queue_num, None))
            if self.queue_rule == 'nftables':
                plan['ruleset'] = self.ruleset(self.table(self.params['fault_id'] or 'FAULT_ID'), queue_num)
            else:
                base = _netem.ipt_chain_base(self.params['fault_id']) if self.params['fault_id'] else 'MCHAOS-FAULT_ID'
                plan['commands'] = [' '.join(shlex.quote(w) for w in argv) for argv in self.ipt_commands(base, queue_num)]
        else:
            plan['netem'] = _netem.netem_args(**self.netem_settings())
            # The handle is picked again at injection (see details.handle); this one is free now.
            handle = _netem.free_handle(self.qdiscs, 0x100)
            plan['commands'] = [' '.join(shlex.quote(w) for w in argv) for argv in self.tc_commands(handle)]
        return plan

    # -- inject ------------------------------------------------------------------------
    def revert_env(self, **values):
        env = dict(CHAOS_NETNS=self.params['netns'] or '', CHAOS_IP=self.bin('ip', 'iproute2'))
        env.update(values)
        return env

    def inject(self, ctx):
        if self.backend == 'nftables':
            self.inject_nftables(ctx)
        elif self.backend == 'nfqueue':
            self.inject_nfqueue(ctx)
        else:
            self.inject_tc(ctx)

    def inject_nfqueue(self, ctx):
        """The delayer first (bound to the queue, registered with the guard), then the rule that
        feeds it. Reverts run last-registered first, so the rule goes before the delayer stops and
        no packet waits in a queue nobody reads."""
        fault_id = ctx.record['fault_id']
        used = self.queues_in_use()
        queue_num = self.params['queue_num']
        if queue_num is None:
            preferred = QUEUE_NUM_FIRST + zlib.crc32(fault_id.encode('utf-8')) % QUEUE_NUM_SPAN
            queue_num = _netem.free_queue_num(used, preferred, QUEUE_NUM_FIRST, QUEUE_NUM_SPAN)
        elif queue_num in used:
            raise FaultError('`queue_num` %d got a listener or a rule meanwhile; not touching it' % queue_num)
        program = ctx.engine.install_program(_nfqueue, _nfqueue.PROGRAM_FILENAME)
        stats_file = os.path.join(ctx.engine.state_dir, fault_id + '.nfqueue-stats')
        # The delayer ends itself well after the guard's deadline, should the guard be gone too.
        config = self.delayer_config(queue_num, ctx.expires_at + ctx.record['revert_timeout'] + DELAYER_GRACE_SECONDS)
        ctx.detail(final_effect_file=stats_file)
        pid, starttime = spawn_detached(self.command([sys.executable, program, 'run', stats_file, json.dumps(config)]))
        ctx.on_revert(kill_action(pid, starttime, group=True, escalate_after=3.0))
        self.wait_for_delayer(stats_file, pid, starttime)
        delayer = dict(name='nfqueue delayer', pid=pid, starttime=starttime)
        ctx.detail(backend='nfqueue', queue_rule=self.queue_rule, queue_num=queue_num, delayer=config, watch=[delayer],
                   direction=list(self.directions), netns=self.params['netns'], spared=self.spared,
                   control_channel_source=self.spared_source)
        if self.queue_rule == 'nftables':
            self.inject_nftables(ctx, queue_num)
            ctx.detail(backend='nfqueue')
            return
        base = _netem.ipt_chain_base(fault_id)
        hooks, chains = _netem.ipt_chains(base, self.directions)
        tools = [tool for tool, version in (('iptables', 4), ('ip6tables', 6)) if version in self.ip_versions]
        for tool in tools:
            rc, out, err = self.run([tool, '-w', '-t', _netem.IPT_TABLE, '-n', '-L', chains[-1]])
            if rc == 0:
                raise FaultError('%s chain %s already exists and is not this fault\'s; not touching it' % (tool, chains[-1]))
        # Registered before the step: the revert removes only this fault's jumps and chains and
        # skips what does not exist, so a module that dies mid-step leaves no rule behind.
        ctx.on_revert(dict(type='command', argv=['sh', '-c', _netem.ipt_delete_script()], ok_rcs=[0], timeout=30,
                           env=self.revert_env(CHAOS_IPTABLES=' '.join(self.bin(t, 'iptables') for t in tools),
                                               CHAOS_HOOKS=' '.join('%s=%s' % item for item in sorted(hooks.items())),
                                               CHAOS_CHAINS=' '.join(chains))))
        commands = self.ipt_commands(base, queue_num)
        ctx.detail(chains=chains, commands=commands)
        for argv in commands:
            rc, out, err = self.run(argv)
            if rc != 0:
                raise FaultError('%s failed: %s' % (' '.join(argv), err.strip()))

    def wait_for_delayer(self, stats_file, pid, starttime):
        """Until the delayer has bound its queue (its stats file says so), or why it could not."""
        deadline = time.time() + DELAYER_START_SECONDS
        while time.time() < deadline:
            stats = read_json(stats_file)
            if stats and stats.get('state') == 'running':
                return stats
            if stats and stats.get('state') == 'failed':
                raise FaultError('the nfqueue delayer could not start: %s' % stats.get('error'))
            if not _guard.process_alive(pid, starttime):
                raise FaultError('the nfqueue delayer (pid %d) exited at start without saying why' % pid)
            time.sleep(0.02)
        raise FaultError('the nfqueue delayer did not bind its queue within %ds' % DELAYER_START_SECONDS)

    def inject_nftables(self, ctx, queue_num=None):
        table = self.table(ctx.record['fault_id'])
        rc, out, err = self.run(['nft', 'list', 'table', _netem.TABLE_FAMILY, table])
        if rc == 0:
            raise FaultError('nftables table %s %s already exists and is not this fault\'s; not touching it'
                             % (_netem.TABLE_FAMILY, table))
        ruleset = self.ruleset(table, queue_num)
        # Registered before the step: the revert deletes only this fault's own table and is a
        # no-op when it does not exist, so a module that dies mid-step still leaves no rules behind.
        ctx.on_revert(dict(type='command', argv=['sh', '-c', _netem.nft_delete_script()], ok_rcs=[0], timeout=30,
                           env=self.revert_env(CHAOS_TABLE=table, CHAOS_NFT=self.bin('nft', 'nftables'))))
        rc, out, err = self.run(['nft', '-f', '-'], data=ruleset)
        if rc != 0:
            raise FaultError('nft refused the ruleset of table %s: %s' % (table, err.strip()))
        ctx.detail(backend='nftables', table='%s %s' % (_netem.TABLE_FAMILY, table), ruleset=ruleset,
                   direction=list(self.directions), netns=self.params['netns'], spared=self.spared,
                   control_channel_source=self.spared_source)

    def inject_tc(self, ctx):
        interface = self.params['interface']
        qdiscs = self.current_qdiscs()
        root = _netem.root_qdisc(qdiscs)
        if root and root['major'] != 0:
            raise FaultError('`interface` %s got a root qdisc (%s %s) meanwhile; not replacing it'
                             % (interface, root['kind'], root['handle']))
        preferred = 0x100 + zlib.crc32(ctx.record['fault_id'].encode('utf-8')) % 0xF000
        handle = _netem.free_handle(qdiscs, preferred)
        commands = self.tc_commands(handle)
        # Registered before the step: the revert deletes the root qdisc only while it carries this
        # fault's handle, so it is a no-op when the step never happened.
        ctx.on_revert(dict(type='command', argv=['sh', '-c', _netem.tc_delete_script()], ok_rcs=[0], timeout=30,
                           env=self.revert_env(CHAOS_DEV=interface, CHAOS_HANDLE='%x' % handle,
                                               CHAOS_TC=self.bin('tc', 'iproute2'))))
        ctx.detail(backend='tc', interface=interface, handle='%x:' % handle, netns=self.params['netns'],
                   commands=commands, spared=self.spared, control_channel_source=self.spared_source)
        for argv in commands:
            rc, out, err = self.run(argv)
            if rc != 0:
                raise FaultError('%s failed: %s' % (' '.join(argv), err.strip()))

    # -- measure ----------------------------------------------------------------------
    def measure(self, ctx):
        details = ctx.record['details']
        if details['backend'] == 'nfqueue':
            return self.measure_nfqueue(details)
        if details['backend'] == 'nftables':
            family, table = details['table'].split()
            rc, out, err = self.run(['nft', '-j', 'list', 'table', family, table])
            if rc != 0:
                return dict(table=details['table'], present=False, error=err.strip())
            effect = dict(table=details['table'], present=True)
            effect.update(_netem.parse_nft_table_json(out))
            return effect
        interface = details['interface']
        major = int(details['handle'][:-1], 16)
        owned = [q for q in self.current_qdiscs() if q['major'] in (major, major + 1)]
        rc, out, err = self.run(['tc', 'filter', 'show', 'dev', interface, 'parent', details['handle']])
        filters = len([line for line in out.splitlines() if 'flowid' in line]) if rc == 0 else None
        return dict(interface=interface, qdiscs=owned, filters=filters)

    def measure_nfqueue(self, details):
        """The rule in place, the delayer listening on the queue, and its counters so far (the
        hold times it adds come with the revert, in RV(final_effects))."""
        listeners = _nfqueue.read_queue_table(self.read_target_file(_nfqueue.PROC_QUEUES) or '')
        delayer = details['watch'][0]
        effect = dict(queue_num=details['queue_num'], queue_rule=details['queue_rule'],
                      listening=details['queue_num'] in listeners,
                      delayer_alive=_guard.process_alive(delayer['pid'], delayer['starttime']),
                      delayer=read_json(details['final_effect_file']))
        if details['queue_rule'] == 'nftables':
            family, table = details['table'].split()
            rc, out, err = self.run(['nft', '-j', 'list', 'table', family, table])
            effect['rules'] = _netem.parse_nft_table_json(out)['rules'] if rc == 0 else 0
        else:
            rules = 0
            for tool in ('iptables', 'ip6tables'):
                for chain in details['chains']:
                    rc, out, err = self.run([tool, '-w', '-t', _netem.IPT_TABLE, '-S', chain])
                    rules += len([line for line in out.splitlines() if line.startswith('-A ')]) if rc == 0 else 0
            effect['rules'] = rules
        return effect


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(
        interface=dict(type='str'),
        netns=dict(type='str'),
        backend=dict(type='str', default='auto', choices=['auto', 'tc', 'nftables', 'nfqueue']),
        queue_num=dict(type='int'),
        direction=dict(type='str', choices=['egress', 'ingress', 'both']),
        delay_ms=dict(type='float'),
        jitter_ms=dict(type='float'),
        correlation_percent=dict(type='float'),
        loss_percent=dict(type='float'),
        corrupt_percent=dict(type='float'),
        duplicate_percent=dict(type='float'),
        reorder_percent=dict(type='float'),
        rate=dict(type='str'),
        partition=dict(type='bool', default=False),
        destinations=dict(type='list', elements='str', default=[]),
        sources=dict(type='list', elements='str', default=[]),
        ports=dict(type='list', elements='int', default=[]),
        exclude_ports=dict(type='list', elements='int', default=[]),
        forwarded=dict(type='bool', default=False),
        spare_control_channel=dict(type='bool', default=True),
        control_channel=dict(type='dict', options=dict(
            address=dict(type='str', required=True),
            port=dict(type='int', default=22),
        )),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_if=fault_required_if(), supports_check_mode=True)
    run_fault_module(module, NetemFault)


if __name__ == '__main__':
    main()
