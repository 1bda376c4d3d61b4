# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hold a fault on one host: renew its lease by rewriting the lease file over the host's own
connection (no Python started on the target), end on the deadline, on a stop file any holder or
the controller writes, or when the fault is gone. Every target runs its own holder at the same
time through Ansible's forks, so one tick renews all hosts at once.

Over the local and the community.docker.docker connections the holder opens one long-lived shell
on the target for the whole hold and sends it a line per tick (a pipe write instead of a process
start per host per tick: a ``docker exec`` costs the controller a CLI start and dockerd an exec);
over any other connection, or with become, it runs the renewal as one command per tick."""

import json
import os
import select
import shlex
import subprocess
import time

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.magsasa.chaos.plugins.module_utils._hold import (
    CLOCK_COMMAND, GONE_MARKER, TICK_END_MARKER, ended_by, gone_history, history_summary, parse_clock,
    renewal_command, renewal_loop, split_answer,
)
from ansible_collections.magsasa.chaos.plugins.module_utils._metrics import (
    MetricsError, evaluate_stop_condition, load_samples_file,
)
from ansible_collections.magsasa.chaos.plugins.module_utils._promql import PromQLError, evaluate_checks


def _write_stop(path, reason):
    if not path or os.path.exists(path):
        return
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    tmp = '%s.tmp.%d' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        json.dump({'reason': reason, 'at': time.time()}, handle)
    os.replace(tmp, path)


def _read_stop(path):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle).get('reason') or 'stopped'
    except (IOError, OSError, ValueError):
        return 'stopped'


class _ChannelLost(Exception):
    pass


class _RenewalChannel(object):
    """One shell on the target, kept for the whole hold, that renews the lease once per line sent.

    It cannot keep a fault alive by itself: the shell renews only on a line from this holder, so if
    the holder or its controller dies (the pipe closes: the shell reads end of file and exits) or the
    link is lost (no line arrives), the renewals stop and the guard lets the lease lapse."""

    def __init__(self, argv):
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, close_fds=True)
        self._pending = b''

    def ask(self, timeout):
        """Send one line; return ``(stdout, rc)`` of the answer, or raise _ChannelLost."""
        try:
            self._proc.stdin.write(b'\n')
            self._proc.stdin.flush()
        except (IOError, OSError) as exc:
            raise _ChannelLost('the renewal channel closed: %s' % exc)
        end = to_bytes(TICK_END_MARKER)
        deadline = time.time() + timeout
        fd = self._proc.stdout.fileno()
        while True:
            at = self._pending.find(end)
            line_end = self._pending.find(b'\n', at) if at >= 0 else -1
            if line_end >= 0:
                answer, self._pending = self._pending[:line_end + 1], self._pending[line_end + 1:]
                return split_answer(to_text(answer, errors='surrogate_or_replace'))
            left = deadline - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _ChannelLost('no answer from the renewal channel within %.1f s' % timeout)
            chunk = os.read(fd, 4096)
            if not chunk:
                raise _ChannelLost('the renewal channel ended (exit status %s)' % self._proc.poll())
            self._pending += chunk

    def close(self):
        """Close stdin (the shell ends on end of file); kill it when it does not end in time."""
        try:
            self._proc.stdin.close()
        except (IOError, OSError):
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('fault_id', 'state_dir', 'lease', 'expires_at', 'until', 'tick', 'slice', 'stop_file',
                             'samples_file', 'stop_conditions', 'fault_start', 'expect_fault', 'prometheus'))

    # connections whose command line for a long-lived shell on the target is known
    _CHANNEL_CONNECTIONS = ('ansible.builtin.local', 'local', 'community.docker.docker', 'docker')

    def _open_channel(self, command):
        """A :class:`_RenewalChannel` running ``renewal_loop(command)`` on the target, or None when
        this connection has no known command line for it (or become is in play): then every tick
        runs ``command`` over the connection."""
        connection = self._connection
        # transport is the name the connection was asked for ('local', 'community.docker.docker');
        # _load_name of a collection plugin is its Python module path
        name = getattr(connection, 'transport', None) or getattr(connection, '_load_name', '')
        if name not in self._CHANNEL_CONNECTIONS or getattr(connection, 'become', None) is not None:
            return None
        shell = self._play_context.executable or '/bin/sh'
        script = renewal_loop(command)
        if name in ('ansible.builtin.local', 'local'):
            argv = [shell, '-c', script]
        else:
            connection._connect()
            argv = connection._build_exec_cmd([shell, '-c', script])
        try:
            return _RenewalChannel([to_bytes(arg, errors='surrogate_or_strict') for arg in argv])
        except (IOError, OSError):
            return None

    def _remote(self, command, channel, timeout):
        """One renewal: through the channel when there is one, else a command over the connection.
        A channel that breaks is dropped and this tick runs as a command, so a lost link still shows
        as the connection's own error."""
        started = time.time()
        if channel is not None:
            try:
                out, rc = channel.ask(timeout)
                return dict(stdout=out, rc=rc, stderr=''), started, time.time(), channel
            except _ChannelLost:
                channel.close()
                channel = None
                started = time.time()
        res = self._low_level_execute_command(command, sudoable=True)
        return res, started, time.time(), channel

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        fault_id = args.get('fault_id') or None
        state_dir = args.get('state_dir') or None
        tick = float(args.get('tick', 1.0))
        stop_file = os.path.expanduser(args['stop_file']) if args.get('stop_file') else None
        expect_fault = bool(args.get('expect_fault', True))
        conditions = args.get('stop_conditions') or {}
        samples_file = args.get('samples_file') or None
        prometheus = args.get('prometheus') or None
        prometheus_samples = []
        if tick <= 0:
            raise AnsibleError('tick must be greater than 0 seconds, got %s' % tick)
        if fault_id and not state_dir:
            raise AnsibleError('state_dir is required with fault_id (the fault state directory on the target)')
        lease = float(args.get('lease', 3.0))
        if lease <= tick:
            raise AnsibleError('lease (%s) must be longer than tick (%s)' % (lease, tick))
        command = renewal_command(state_dir, fault_id, lease) if fault_id else CLOCK_COMMAND
        until = float(args['until']) if args.get('until') is not None else None
        # A held fault ends when its guard reverts it at its own deadline (the host's clock): the
        # holder waits for that, so no host's fault is cut short by a skewed clock or by a host
        # injected earlier. Past the deadline plus this grace it stops waiting (the rollback reverts).
        expires_at = float(args['expires_at']) if args.get('expires_at') is not None and expect_fault else None
        grace = 1.0 + tick
        began = time.time()
        slice_end = began + float(args['slice']) if args.get('slice') is not None else None
        renewals = 0
        offset = None
        best_rtt = float('inf')
        ended = reason = history = None
        # Ansible's workers run in sessions of their own (they detach from the terminal), so a kill
        # of the controller's process group does not reach this one: it must notice by itself that
        # its controller is gone, and stop renewing, or the faults would outlive the controller.
        controller = os.getppid()
        # a slice renews about once: a channel would cost its start and its close on top of that one renewal
        channel = self._open_channel(command) if slice_end is None else None
        # the first answer waits for the channel to start (a docker exec under load), later ones
        # only for one round trip; past the lease a late answer renews nothing useful anyway
        answer_timeout = max(float(self._play_context.timeout or 10), lease)
        try:
            while True:
                if os.getppid() != controller:
                    ended, reason = 'controller-gone', 'the controller (pid %d) is gone; renewals stopped' % controller
                    break
                try:
                    res, sent, back, channel = self._remote(command, channel, answer_timeout)
                except AnsibleConnectionFailure as exc:
                    # the link is gone (a dead SSH connection, a host down): renewals stop here, and the
                    # target's guard reverts the fault when the last lease it was given runs out
                    ended = 'unreachable'
                    reason = '%s (renewals stopped; the guard on the host reverts the fault when its %g s lease lapses)' % (
                        to_text(exc), lease) if fault_id else to_text(exc)
                    break
                except AnsibleError as exc:
                    ended, reason = 'error', to_text(exc)
                    break
                answer_timeout = lease
                out = to_text(res.get('stdout', ''))
                clock = parse_clock(out)
                # the quickest round trip bounds the offset's error best (half of it)
                if clock is not None and back - sent < best_rtt:
                    best_rtt = back - sent
                    offset = clock - (sent + back) / 2.0
                if res.get('rc') not in (0, None):
                    ended = 'error'
                    reason = 'renewing the lease failed (rc %s): %s' % (
                        res.get('rc'), to_text(res.get('stderr', '')).strip() or out.strip())
                    break
                if fault_id and GONE_MARKER in out:
                    # printed with the marker; read again only when the answer did not carry it
                    history = gone_history(out) or self._history(state_dir, fault_id)
                    if expect_fault:
                        ended, reason = ended_by(history)
                        break
                    # an instant fault (a crash) is over once injected: observe without renewing (a
                    # channel's renewal finds no record and writes nothing; its clock is still read)
                    fault_id, command = None, CLOCK_COMMAND
                elif fault_id:
                    renewals += 1
                now = time.time()
                if expires_at is not None:
                    end = expires_at - (offset or 0.0)
                    if now >= end + grace:
                        ended = 'deadline'
                        break
                    # look again just after the deadline, when the guard should have reverted it, then
                    # often (a line on the channel is a pipe write; a command per look costs more)
                    wake = end + 0.3 if now < end else now + (0.2 if channel is not None else min(tick, 0.5))
                else:
                    if until is not None and now >= until:
                        ended = 'deadline'
                        break
                    wake = until
                if slice_end is not None and now >= slice_end:
                    ended = 'slice'
                    break
                stopped = _read_stop(stop_file)
                if stopped:
                    ended, reason = 'stopped', stopped
                    break
                breach = (self._breach(samples_file, conditions, args.get('fault_start'))
                          or self._promql_breach(prometheus, prometheus_samples))
                if breach:
                    ended, reason = 'stop-condition', breach
                    break
                time.sleep(max(0.0, min(t for t in (now + tick, wake, slice_end) if t is not None) - time.time()))
        finally:
            if channel is not None:
                channel.close()
        if ended in ('error', 'unreachable', 'reverted-outside', 'lease-lapsed', 'stop-condition', 'guard'):
            _write_stop(stop_file, '%s on %s: %s' % (ended, task_vars.get('inventory_hostname'), reason))
        result.update(changed=False, ended=ended, reason=reason, clock_offset=offset, renewals=renewals,
                      held_from=began, held_until=time.time(), history=history_summary(history),
                      prometheus_samples=prometheus_samples)
        return result

    @staticmethod
    def _promql_breach(prometheus, samples):
        """The PromQL stop conditions (``chaos_abort.prometheus``), evaluated by the same holder as the
        probe's: their values join ``samples``. A query that fails mid-fault is kept as a sample with
        its error and does not end the fault; the checks were proven valid before injection."""
        if not prometheus or not prometheus.get('checks'):
            return None
        try:
            verdict = evaluate_checks(prometheus['url'], prometheus['checks'], 'stop_condition',
                                      prometheus.get('headers'), float(prometheus.get('timeout', 5)),
                                      prometheus.get('validate_certs', True))
        except PromQLError as exc:
            samples.append({'at': round(time.time(), 3), 'error': to_text(exc), 'purpose': 'stop_condition'})
            return None
        samples.extend(verdict['samples'])
        return 'stop condition breached: %s' % '; '.join(verdict['reasons']) if verdict['breached'] else None

    @staticmethod
    def _breach(samples_file, conditions, since):
        if not samples_file or not conditions or not os.path.exists(samples_file):
            return None
        try:
            verdict = evaluate_stop_condition(
                load_samples_file(samples_file, growing=True), window=conditions.get('window') or 20,
                max_error_rate_percent=conditions.get('max_error_rate_percent'),
                max_consecutive_failures=conditions.get('max_consecutive_failures'), since=since)
        except MetricsError as exc:
            raise AnsibleError('cannot evaluate stop_conditions: %s' % exc)
        return 'stop condition breached: %s' % '; '.join(verdict['reasons']) if verdict['breached'] else None

    def _history(self, state_dir, fault_id):
        path = os.path.join(state_dir, 'history', fault_id + '.json')
        try:
            res = self._low_level_execute_command('cat %s' % shlex.quote(path), sudoable=True)
        except AnsibleError:
            return None
        try:
            return json.loads(to_text(res.get('stdout', ''))) if res.get('rc') == 0 else None
        except ValueError:
            return None
