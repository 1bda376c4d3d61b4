# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The userspace delayer of the ``nfqueue`` backend of chaos_netem, and its netlink protocol.

A rule (iptables ``NFQUEUE --queue-bypass`` or nftables ``queue ... bypass``) hands the selected
packets to a queue number the fault owns. This program binds that queue over a raw
``AF_NETLINK``/``NETLINK_NETFILTER`` socket, holds each packet for its delay (plus jitter, with
optional correlation, and an optional rate limit), then accepts it; a share of them (loss) is
dropped instead. It asks the kernel for only the first bytes of each packet and answers with
verdicts that carry no payload, many per ``send``; held packets wait in a heap ordered by
release time. Its own hold times (p50/p95 over a sample of the packets) and counters go to a
JSON stats file, rewritten every second and once more at exit.

It runs detached on targets: this file is copied verbatim into the fault state directory and
started from there (``python3 magsasa_chaos_nfqueue.py run STATS_FILE CONFIG_JSON``), so it must
stay standalone - Python 3.8+ standard library only, no Ansible imports, apart from ``_atomic``,
copied next to it (:data:`PROGRAM_NEEDS`). The message builders
and the delay arithmetic are plain functions, unit-tested on their own.

On SIGTERM it accepts every packet it holds and exits: the fault's revert removes the rule first,
then stops this process, so no packet is ever left in a queue without a reader. Killed outright,
the kernel drops what it held and, with the bypass flag on the rule, lets later packets through.
"""

import errno
import heapq
import json
import math
import os
import random
import select
import signal
import socket
import struct
import sys
import time

try:
    # The copy in a fault's directory imports the copy of _atomic installed next to it.
    import magsasa_chaos_atomic as _atomic
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic

PROGRAM_FILENAME = 'magsasa_chaos_nfqueue.py'
PROGRAM_NEEDS = (_atomic,)
PROC_QUEUES = '/proc/net/netfilter/nfnetlink_queue'

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLMSG_DONE = 3

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NFQA_CAP_LEN = 19
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN = 0x1
NF_DROP = 0
NF_ACCEPT = 1

NLMSG_HDR = struct.Struct('=IHHII')
NFGEN_HDR = struct.Struct('!BBH')
NLA_HDR = struct.Struct('=HH')
NLA_TYPE_MASK = 0x3fff
PACKET_HDR = struct.Struct('!IHB')
VERDICT_HDR = struct.Struct('!II')
ERROR_CODE = struct.Struct('=i')

# Enough of each packet for its length (NFQA_CAP_LEN says the rest); verdicts carry no payload.
COPY_RANGE = 64
QUEUE_MAXLEN = 20000
RCVBUF_BYTES = 16 << 20
READ_BATCH = 256
SEND_BATCH_BYTES = 32768
STATS_INTERVAL = 1.0
RELEASE_SLACK = 0.0005
HOLD_SAMPLES = 20000
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class NfqueueError(Exception):
    """A failure of the queue itself (binding, the kernel module), with a message for the user."""


# ---------------------------------------------------------------- netlink messages

def _align(length):
    return (length + 3) & ~3


def attribute(attr_type, payload):
    """One netlink attribute, padded to 4 bytes."""
    length = NLA_HDR.size + len(payload)
    return NLA_HDR.pack(length, attr_type) + payload + b'\0' * (_align(length) - length)


def message(msg_type, queue_num, attributes, seq=0, flags=NLM_F_REQUEST, family=socket.AF_UNSPEC):
    """One nfnetlink_queue message: netlink header, nfgenmsg (the queue number big-endian), attributes."""
    body = NFGEN_HDR.pack(family, 0, queue_num) + b''.join(attributes)
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body


def config_bind(queue_num, seq=1):
    return message(NFQNL_MSG_CONFIG, queue_num, [attribute(NFQA_CFG_CMD, struct.pack('!BxH', NFQNL_CFG_CMD_BIND, 0))],
                   seq=seq, flags=NLM_F_REQUEST | NLM_F_ACK)


def config_unbind(queue_num, seq=9):
    return message(NFQNL_MSG_CONFIG, queue_num, [attribute(NFQA_CFG_CMD, struct.pack('!BxH', NFQNL_CFG_CMD_UNBIND, 0))],
                   seq=seq, flags=NLM_F_REQUEST | NLM_F_ACK)


def config_params(queue_num, copy_range=COPY_RANGE, maxlen=QUEUE_MAXLEN, fail_open=True, seq=2):
    """Copy mode (the first ``copy_range`` bytes), queue length, and fail-open: a full queue
    accepts packets rather than dropping them, so an overloaded delayer degrades to no delay."""
    flags = NFQA_CFG_F_FAIL_OPEN if fail_open else 0
    return message(NFQNL_MSG_CONFIG, queue_num, [
        attribute(NFQA_CFG_PARAMS, struct.pack('!IB', copy_range, NFQNL_COPY_PACKET)),
        attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack('!I', maxlen)),
        attribute(NFQA_CFG_FLAGS, struct.pack('!I', flags)),
        attribute(NFQA_CFG_MASK, struct.pack('!I', NFQA_CFG_F_FAIL_OPEN)),
    ], seq=seq, flags=NLM_F_REQUEST | NLM_F_ACK)


def verdict(queue_num, packet_id, accept=True):
    """A verdict without payload: the kernel sends the packet it holds on unchanged (or drops it)."""
    return message(NFQNL_MSG_VERDICT, queue_num,
                   [attribute(NFQA_VERDICT_HDR, VERDICT_HDR.pack(NF_ACCEPT if accept else NF_DROP, packet_id))])


def parse_attributes(data, offset=0, end=None):
    """``{type: payload}`` of the attributes in ``data[offset:end]``."""
    end = len(data) if end is None else end
    found = {}
    while offset + NLA_HDR.size <= end:
        length, attr_type = NLA_HDR.unpack_from(data, offset)
        if length < NLA_HDR.size:
            break
        found[attr_type & NLA_TYPE_MASK] = data[offset + NLA_HDR.size:offset + length]
        offset += _align(length)
    return found


def parse_messages(data):
    """The messages in one netlink datagram, each as a dict.

    ``{'kind': 'packet', 'queue': n, 'id': packet id, 'length': bytes on the wire}``,
    ``{'kind': 'error', 'seq': n, 'errno': e}`` (0 for an ACK), or ``{'kind': 'other', 'type': t}``.
    """
    messages = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, msg_type, _flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            break
        body = offset + NLMSG_HDR.size
        if msg_type == NLMSG_ERROR:
            messages.append(dict(kind='error', seq=seq, errno=-ERROR_CODE.unpack_from(data, body)[0]))
        elif msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            queue_num = NFGEN_HDR.unpack_from(data, body)[2]
            attrs = parse_attributes(data, body + NFGEN_HDR.size, offset + length)
            packet_id = PACKET_HDR.unpack_from(attrs[NFQA_PACKET_HDR])[0]
            if NFQA_CAP_LEN in attrs:
                wire_length = struct.unpack('!I', attrs[NFQA_CAP_LEN])[0]
            else:
                wire_length = len(attrs.get(NFQA_PAYLOAD, b''))
            messages.append(dict(kind='packet', queue=queue_num, id=packet_id, length=wire_length))
        else:
            messages.append(dict(kind='other', type=msg_type))
        offset += _align(length)
    return messages


# ---------------------------------------------------------------- delay arithmetic

def correlated_uniform(previous, correlation, draw):
    """netem's correlated random: the next value leans on the last one by ``correlation`` (0-1)."""
    return (1.0 - correlation) * draw + correlation * previous


def hold_seconds(delay_ms, jitter_ms, unit):
    """The hold of one packet: ``delay`` moved by up to ``jitter`` either way as ``unit`` goes 0 to 1;
    never negative."""
    return max(0.0, (delay_ms + jitter_ms * (2.0 * unit - 1.0)) / 1000.0)


def rate_release(release, size_bytes, rate_bps, link_free_at):
    """With a rate limit, a packet leaves no earlier than the link is free, and occupies it for its
    serialisation time. Returns (release time, time the link is free again)."""
    if not rate_bps:
        return release, link_free_at
    start = max(release, link_free_at)
    return start, start + size_bytes * 8.0 / rate_bps


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(math.ceil(fraction * len(sorted_values) - 1e-9)) - 1))
    return sorted_values[rank]


def read_queue_table(text):
    """``/proc/net/netfilter/nfnetlink_queue`` as ``{queue number: portid}`` (the bound queues)."""
    queues = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            queues[int(fields[0])] = int(fields[1])
    return queues


# ---------------------------------------------------------------- the delayer

class Delayer(object):
    """Holds the packets of one queue; see the module docstring."""

    def __init__(self, config, stats_path):
        self.queue_num = int(config['queue_num'])
        self.delay_ms = float(config.get('delay_ms') or 0.0)
        self.jitter_ms = float(config.get('jitter_ms') or 0.0)
        self.correlation = float(config.get('correlation_percent') or 0.0) / 100.0
        self.loss = float(config.get('loss_percent') or 0.0) / 100.0
        self.rate_bps = float(config.get('rate_bps') or 0.0)
        self.maxlen = int(config.get('queue_maxlen') or QUEUE_MAXLEN)
        self.exit_at = config.get('exit_at')
        self.stats_path = stats_path
        self.random = random.Random()
        self.previous_unit = self.random.random()
        self.link_free_at = 0.0
        self.heap = []
        self.sequence = 0
        self.sock = None
        self.stop_signal = None
        self.started_at = time.time()
        self.counters = dict(received=0, accepted=0, dropped=0, overruns=0, send_errors=0, max_held=0)
        self.holds = []
        self.hold_count = 0
        self.scheduling = None

    # -- socket ----------------------------------------------------------------------
    def open(self):
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except (OSError, socket.error) as exc:
            raise NfqueueError('cannot open a NETLINK_NETFILTER socket: %s' % exc)
        for option in (getattr(socket, 'SO_RCVBUFFORCE', 33), socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF_BYTES)
                break
            except (OSError, socket.error):
                continue
        sock.bind((0, 0))
        self.sock = sock
        self.request(config_bind(self.queue_num, seq=1), 1, 'bind queue %d' % self.queue_num)
        self.request(config_params(self.queue_num, maxlen=self.maxlen, seq=2), 2, 'configure queue %d' % self.queue_num)
        sock.setblocking(False)

    def request(self, data, seq, what):
        self.sock.send(data)
        deadline = time.time() + 5.0
        while time.time() < deadline:
            ready = select.select([self.sock], [], [], max(0.0, deadline - time.time()))[0]
            if not ready:
                break
            for reply in parse_messages(self.sock.recv(65536)):
                if reply['kind'] == 'error' and reply['seq'] == seq:
                    if reply['errno']:
                        raise NfqueueError('%s: %s' % (what, describe_errno(reply['errno'], self.queue_num)))
                    return
        raise NfqueueError('%s: no answer from the kernel within 5 s' % what)

    # -- packets ---------------------------------------------------------------------
    def schedule(self, packet, now):
        self.counters['received'] += 1
        if self.loss and self.random.random() < self.loss:
            heapq.heappush(self.heap, (now, self.sequence, packet['id'], False, now))
            self.sequence += 1
            return
        unit = self.random.random()
        if self.correlation:
            unit = correlated_uniform(self.previous_unit, self.correlation, unit)
            self.previous_unit = unit
        release = now + hold_seconds(self.delay_ms, self.jitter_ms, unit)
        release, self.link_free_at = rate_release(release, packet['length'], self.rate_bps, self.link_free_at)
        heapq.heappush(self.heap, (release, self.sequence, packet['id'], True, now))
        self.sequence += 1
        if len(self.heap) > self.counters['max_held']:
            self.counters['max_held'] = len(self.heap)

    def read(self):
        now = time.monotonic()
        for _attempt in range(READ_BATCH):
            try:
                data = self.sock.recv(65536)
            except (OSError, socket.error) as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                if exc.errno == errno.ENOBUFS:
                    self.counters['overruns'] += 1
                    continue
                if exc.errno == errno.EINTR:
                    continue
                raise
            for item in parse_messages(data):
                if item['kind'] == 'packet':
                    self.schedule(item, now)

    def release_due(self, now, everything=False):
        batch = []
        size = 0
        while self.heap and (everything or self.heap[0][0] <= now):
            _release, _seq, packet_id, accept, arrived = heapq.heappop(self.heap)
            data = verdict(self.queue_num, packet_id, accept)
            batch.append(data)
            size += len(data)
            if accept:
                self.counters['accepted'] += 1
                self.note_hold(time.monotonic() - arrived)
            else:
                self.counters['dropped'] += 1
            if size >= SEND_BATCH_BYTES:
                self.send(b''.join(batch))
                batch, size = [], 0
        if batch:
            self.send(b''.join(batch))

    def send(self, data):
        while True:
            try:
                self.sock.send(data)
                return
            except (OSError, socket.error) as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    select.select([], [self.sock], [], 0.01)
                    continue
                self.counters['send_errors'] += 1
                return

    def note_hold(self, seconds):
        """Keep a uniform sample of the hold times (reservoir), so memory stays bounded."""
        self.hold_count += 1
        if len(self.holds) < HOLD_SAMPLES:
            self.holds.append(seconds)
        else:
            slot = self.random.randrange(self.hold_count)
            if slot < HOLD_SAMPLES:
                self.holds[slot] = seconds

    # -- stats -----------------------------------------------------------------------
    def stats(self, state, error=None):
        ordered = sorted(self.holds)
        held = dict(('p%d_ms' % int(f * 100), None if percentile(ordered, f) is None
                     else round(percentile(ordered, f) * 1000.0, 3)) for f in (0.5, 0.95, 0.99))
        result = dict(state=state, pid=os.getpid(), queue_num=self.queue_num, started_at=self.started_at,
                      updated_at=time.time(), delay_ms=self.delay_ms, jitter_ms=self.jitter_ms,
                      held_now=len(self.heap), hold_samples=len(ordered), hold=held, error=error,
                      scheduling=self.scheduling)
        result.update(self.counters)
        return result

    def write_stats(self, state, error=None):
        _atomic.write_json_atomic(self.stats_path, self.stats(state, error))

    # -- main loop ---------------------------------------------------------------------
    def on_signal(self, signum, _frame):
        self.stop_signal = signum

    def run(self):
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.on_signal)
        self.scheduling = raise_priority()
        try:
            self.open()
        except NfqueueError as exc:
            self.write_stats('failed', str(exc))
            return 1
        self.write_stats('running')
        next_stats = time.monotonic() + STATS_INTERVAL
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        while self.stop_signal is None and not (self.exit_at and time.time() >= self.exit_at):
            now = time.monotonic()
            wait = min(next_stats, self.heap[0][0] - RELEASE_SLACK if self.heap else next_stats) - now
            # poll() sleeps whole milliseconds, rounded up: ask for the floor, at least 1 ms, and
            # let packets go up to RELEASE_SLACK early, so releases are neither late nor spun for.
            try:
                events = poller.poll(max(1, int(wait * 1000.0)) if wait > 0 else 0)
            except (OSError, select.error):
                events = []
            if events:
                self.read()
            now = time.monotonic()
            self.release_due(now + RELEASE_SLACK)
            if now >= next_stats:
                self.write_stats('running')
                next_stats = now + STATS_INTERVAL
        self.release_due(time.monotonic(), everything=True)
        try:
            self.sock.setblocking(True)
            self.sock.send(config_unbind(self.queue_num))
        except (OSError, socket.error):
            pass
        self.sock.close()
        self.write_stats('stopped')
        return 0


def raise_priority():
    """Wake on time on a busy host: a packet held too long is the fault's own error. A real-time
    round-robin class at the lowest priority (it sleeps in poll between releases and the kernel's
    real-time throttling bounds it), else the highest nice level allowed; left as is without the
    privilege."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        return 'SCHED_RR'
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        return 'nice -10'
    except (AttributeError, OSError):
        return 'default'


def describe_errno(code, queue_num):
    if code == errno.EBUSY:
        return 'queue_num %d is already in use by another listener; choose another queue_num' % queue_num
    if code in (errno.EPERM, errno.EACCES):
        return 'not permitted (needs root or CAP_NET_ADMIN)'
    if code in (errno.ENOENT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT):
        return 'the kernel lacks nfnetlink_queue (modprobe nfnetlink_queue)'
    return os.strerror(code)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or argv[0] != 'run':
        sys.stderr.write('usage: %s run STATS_FILE CONFIG_JSON\n' % PROGRAM_FILENAME)
        return 2
    return Delayer(json.loads(argv[2]), argv[1]).run()


if __name__ == '__main__':
    raise SystemExit(main())
