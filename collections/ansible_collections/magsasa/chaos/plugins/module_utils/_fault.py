# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fault lifecycle shared by every fault module.

A fault module declares its own options, merges in :func:`fault_argument_spec`, subclasses
:class:`Fault` and calls :func:`run_fault_module`. The engine does the rest, the same way for
every fault:

* ``state: present`` — validate, then (unless an identical fault is already active, which only
  renews its lease) write the record, start the guard, inject, measure the effect.
  The guard is started *before* injection and every revert action is persisted the moment it is
  registered, so a module that dies half way through still leaves a fault the guard can undo.
* ``state: absent`` — revert the fault named by ``fault_id`` (or every fault of this kind);
  reverting a fault that is already gone is ``ok``, not an error.
* check mode — return the plan; touch nothing.

A subclass implements ``validate()``, ``identity()``, ``plan()``, ``inject(ctx)`` and, if it can
measure what it did, ``measure(ctx)``; ``effective_duration()`` when its duration is derived, not
given, and ``after_present(result)`` / ``after_absent(result)`` to report more than the engine does.
No module rewrites its parameters or keeps a main flow of its own. Inside ``inject`` it registers how to undo each step with
``ctx.on_revert({...})`` *right after* doing the step (see ``_guard`` for the action types).
"""

import os
import re
import socket
import sys
import time
import traceback
import uuid

from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic, _guard

FAULT_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
WORKER_GRACE_SECONDS = 10.0
LIFECYCLE_OPTIONS = ('state', 'duration', 'max_duration', 'fault_id', 'lease', 'state_dir', 'persist_dir',
                     'revert_timeout', 'start_at')
# start_at further ahead than this is a mistake (a wrong clock or unit), not a plan
MAX_START_DELAY_SECONDS = 300.0


def default_state_dir():
    if os.geteuid() == 0:
        return '/run/magsasa-chaos'
    return os.path.join(os.path.expanduser('~'), '.cache', 'magsasa-chaos')


def default_persist_dir():
    if os.geteuid() == 0:
        return '/var/lib/magsasa-chaos'
    return os.path.join(os.path.expanduser('~'), '.local', 'state', 'magsasa-chaos')


def active_records(state_dir, persist_dir, kinds=()):
    """``(directory, record)`` for the active faults of this boot, then those a previous boot left
    in the persist dir (a fault that outlives a reboot and was not reverted by its boot hook)."""
    kinds = set(kinds or ())
    found = [(state_dir, r) for r in _guard.list_records(state_dir)]
    this_boot = _guard.boot_id()
    if os.path.abspath(persist_dir) != os.path.abspath(state_dir):
        found.extend((persist_dir, r) for r in _guard.list_records(persist_dir)
                     if r.get('boot_id') and r.get('boot_id') != this_boot)
    return [(d, r) for d, r in found if not kinds or r.get('kind') in kinds]


def fault_summary(state_dir, record, now, previous_boot=False):
    """What ``chaos_faults`` reports of one active fault (read-only: the lease file as the guard reads it)."""
    guard = record.get('guard') or {}
    expires = record.get('expires_at')
    renewed_at, lease = (_guard.read_lease(state_dir, record['fault_id']) if record.get('lease_file')
                         else (None, None))
    deadline = _guard.fault_deadline(record, renewed_at, lease) if expires is not None else None
    return dict(
        fault_id=record.get('fault_id'), kind=record.get('kind'), module=record.get('module'),
        started_at=record.get('started_at'), expires_at=expires,
        lease_expires_at=_guard.lease_end(record, renewed_at, lease),
        remaining=None if deadline is None else round(max(0.0, deadline - now), 3),
        guard_alive=bool(guard.get('pid')) and _guard.process_alive(guard['pid'], guard.get('starttime')),
        plan=record.get('plan') or {}, corrupt=record.get('corrupt'), previous_boot=previous_boot,
    )


def active_faults(state_dir=None, persist_dir=None, kinds=()):
    """Summaries of every active fault on this host (see :func:`fault_summary`)."""
    state_dir = state_dir or default_state_dir()
    persist_dir = persist_dir or default_persist_dir()
    now = time.time()
    return [fault_summary(d, r, now, d != state_dir) for d, r in active_records(state_dir, persist_dir, kinds)]


def fault_argument_spec():
    """The lifecycle options every fault module accepts (documented in doc_fragments/fault.py)."""
    return dict(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        duration=dict(type='float'),
        max_duration=dict(type='float', default=3600.0),
        fault_id=dict(type='str'),
        lease=dict(type='float'),
        state_dir=dict(type='path'),
        persist_dir=dict(type='path'),
        revert_timeout=dict(type='float', default=60.0),
        start_at=dict(type='float'),
    )


def fault_required_if():
    return [('state', 'present', ('duration',))]


class FaultError(Exception):
    """A failure with a message meant for the user (field, value, what to do)."""


class Fault(object):
    """Base class of a fault. ``kind`` names it in records and fault ids."""

    kind = None

    def __init__(self, module):
        self.module = module
        self.params = module.params

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def validate(self):
        """Check what the argument spec cannot say; call ``self.fail`` naming field and value."""

    def identity(self):
        """The parameters that make two requests 'the same fault' (default: every option of the
        module's own, minus secrets)."""
        secret = set(name for name, spec in self.module.argument_spec.items() if spec.get('no_log'))
        return dict((k, v) for k, v in self.params.items()
                    if k not in LIFECYCLE_OPTIONS and k not in secret)

    def plan(self):
        """What ``present`` would do, as plain data (returned in check mode and recorded)."""
        return self.identity()

    def inject(self, ctx):
        raise NotImplementedError

    def measure(self, ctx):
        """The effect measured after injection (optional)."""
        return {}

    def effective_duration(self):
        """The seconds the fault lasts, from its parameters (default: ``duration``). A fault that derives
        it (from an intensity preset, or a floor its own options set) overrides this instead of rewriting
        ``duration``; the engine checks and records what this returns."""
        return self.params['duration']

    def after_present(self, result):
        """Called with the result of ``state: present`` (new, renewed or check mode) before the module
        exits: add to it, or fail the module with it (optional)."""

    def after_absent(self, result):
        """Called with the result of ``state: absent`` before the module exits (optional)."""

    def outlives_reboot(self):
        """Whether the fault's effect stays after the host reboots (a stopped container or database,
        files on disk): its record is then kept on persistent storage for the boot hook."""
        return False


class InjectContext(object):
    """Handed to ``Fault.inject``: registers revert actions and details, persisting each at once."""

    def __init__(self, engine, record):
        self.engine = engine
        self.record = record
        self.started_at = record['started_at']
        self.expires_at = record['expires_at']
        # The planned duration counts from the moment the injection took effect, so the guard's
        # deadline moves by however long injecting took. Workers carry their own deadline only as a
        # backstop for a dead guard: it must not come before the guard's, so it gets this grace.
        self.worker_deadline = record['expires_at'] + WORKER_GRACE_SECONDS

    @property
    def remaining(self):
        return max(0.0, self.expires_at - time.time())

    def install_program(self, program_module, filename):
        """Copy a standalone helper program (a worker, a revert step) where this fault's revert can
        still run it: the persistent directory when the fault outlives a reboot, else the state
        directory. Returns its path, for the argv of a process or a ``command`` revert action."""
        return self.engine.install_program(program_module, filename, self.record.get('persist_dir'))

    @property
    def worker_remaining(self):
        return max(0.0, self.worker_deadline - time.time())

    def on_revert(self, action):
        self.record['revert'].append(action)
        if not self.engine.update_if_active(self.record['fault_id'], revert=self.record['revert']):
            # The guard already reverted the fault (its deadline came during injection): undo this
            # step now, or nothing ever would.
            _guard.execute_actions([action], timeout=self.record.get('revert_timeout', 60))
            raise FaultError('the %s fault reached its deadline while it was being injected; '
                             'use a longer duration' % self.record['kind'])

    def detail(self, **values):
        self.record['details'].update(values)
        self.engine.update_if_active(self.record['fault_id'], details=self.record['details'])


# Shared with the guard, which starts the watchdog with it.
spawn_detached = _guard.spawn_detached


def kill_action(pid, starttime, signal_name='SIGTERM', group=True, escalate_after=3.0):
    """A revert action that stops a process we started (the same process, never a reused pid)."""
    return dict(type='kill', pid=pid, starttime=starttime, signal=signal_name, group=group,
                escalate_after=escalate_after)


# Copies a standalone program with its PROGRAM_NEEDS; lives in _atomic so that a program which
# installs itself (the probe sampler) uses the same function without importing this module.
install_program = _atomic.install_program


class FaultEngine(object):
    """Runs one fault module invocation through the shared lifecycle."""

    def __init__(self, module, fault_class):
        self.module = module
        self.fault = fault_class(module)
        self.kind = fault_class.kind
        self.state_dir = module.params['state_dir'] or default_state_dir()

    # -- records -------------------------------------------------------------------
    def path(self, fault_id):
        return _guard.record_path(self.state_dir, fault_id)

    def save(self, record):
        _guard.save_record(self.state_dir, record)

    def update_if_active(self, fault_id, **fields):
        """Set ``fields`` in the record on disk, unless the guard has reverted the fault meanwhile
        (a measure may outlast a short fault). Writing our in-memory copy instead would bring back a
        fault that is gone, or drop the ``revert_failures`` the guard recorded. Returns whether the
        fault was still active."""
        with _guard.FaultLock(self.state_dir, fault_id):
            try:
                current = _guard.read_record(self.path(fault_id))
            except ValueError:
                return False
            if current is None:
                return False
            current.update(fields)
            self.save(current)
            return True

    def active(self):
        return [r for r in _guard.list_records(self.state_dir) if r.get('kind') == self.kind]

    def ensure_state_dir(self):
        if not os.path.isdir(self.state_dir):
            os.makedirs(self.state_dir, 0o700)
        return self.install_program(_guard, _guard.GUARD_FILENAME)

    def install_program(self, program_module, filename, directory=None):
        """Copy a standalone module_utils program (the guard, a delayer) into the state directory (or
        ``directory``), where it outlives the task; returns its path."""
        return install_program(program_module, filename, directory or self.state_dir)

    # -- validation ----------------------------------------------------------------
    def validate(self):
        params = self.module.params
        fault_id = params['fault_id']
        if fault_id is not None and not FAULT_ID_RE.match(fault_id):
            self.module.fail_json(msg='fault_id must be 1-64 characters of letters, digits, "_", "." or "-" '
                                      'starting with a letter or digit, got %r' % fault_id)
        for name in ('max_duration', 'revert_timeout'):
            if params[name] is not None and params[name] <= 0:
                self.module.fail_json(msg='%s must be greater than 0, got %s' % (name, params[name]))
        if params['state'] == 'present':
            duration = self.fault.effective_duration()
            if duration is None or duration <= 0:
                self.module.fail_json(msg='duration must be greater than 0 seconds, got %s' % duration)
            start_at = params.get('start_at')
            if start_at is not None and start_at - time.time() > MAX_START_DELAY_SECONDS:
                self.module.fail_json(msg='start_at %s is %.0f s ahead of this host\'s clock; at most %.0f s is allowed '
                                          '(is the clock or the unit wrong?)'
                                          % (start_at, start_at - time.time(), MAX_START_DELAY_SECONDS))
            if duration > params['max_duration']:
                self.module.fail_json(msg='duration %s exceeds max_duration %s; raise max_duration deliberately '
                                          'if this long a fault is intended' % (duration, params['max_duration']))
            lease = params['lease']
            if lease is not None and lease <= 0:
                self.module.fail_json(msg='lease must be greater than 0 seconds, got %s' % lease)

    # -- present -------------------------------------------------------------------
    def present(self):
        params = self.module.params
        duration = self.fault.effective_duration()
        identity = self.fault.identity()
        now = time.time()
        existing = None
        if params['fault_id']:
            try:
                existing = _guard.read_record(self.path(params['fault_id']))
            except ValueError as exc:
                self.module.fail_json(msg=str(exc))
            if existing is not None and (existing.get('kind') != self.kind or existing.get('identity') != identity):
                self.module.fail_json(
                    msg='fault_id %s is already active as a different fault (%s %s); revert it with state=absent first'
                        % (params['fault_id'], existing.get('kind'), existing.get('identity')))
        else:
            for record in self.active():
                if record.get('identity') == identity:
                    existing = record
                    break
        if existing is not None:
            return self.renew(existing, now)
        # Only a new injection runs the fault's own checks: reverting needs nothing but the record,
        # and renewing an identical active fault must not be refused by that fault's own effect
        # (the memory it holds, the space it fills, the process it killed).
        self.fault.validate()

        fault_id = params['fault_id'] or '%s-%s' % (self.kind, uuid.uuid4().hex[:10])
        plan = self.fault.plan()
        expires_at = now + duration
        lease_expires_at = None if params['lease'] is None else min(expires_at, now + params['lease'])
        result = dict(changed=True, fault_id=fault_id, kind=self.kind, plan=plan, state_dir=self.state_dir,
                      started_at=now, expires_at=expires_at, lease_expires_at=lease_expires_at)
        if self.module.check_mode:
            result['msg'] = 'check mode: would inject a %s fault for %ss' % (self.kind, duration)
            # what the fault would run beside; a chaos run's preflight takes its first lock from it
            result['active_faults'] = active_faults(self.state_dir, params['persist_dir'])
            return result

        guard_script = self.ensure_state_dir()
        record = dict(
            version=_guard.RECORD_VERSION, fault_id=fault_id, kind=self.kind,
            module=self.module._name, host=socket.gethostname(), identity=identity, plan=plan,
            started_at=now, duration=duration, expires_at=expires_at,
            lease=params['lease'], lease_expires_at=lease_expires_at, lease_file=params['lease'] is not None,
            revert_timeout=params['revert_timeout'], revert=[], details={}, status='injecting',
            boot_id=_guard.boot_id(),
        )
        if params['lease'] is not None:
            # Renewals rewrite this file (no Python needed on the target); the guard reads it.
            _guard.write_lease(self.state_dir, fault_id, params['lease'])
        if self.fault.outlives_reboot():
            record['persist_dir'] = params['persist_dir'] or default_persist_dir()
            self.install_program(_guard, _guard.GUARD_FILENAME, record['persist_dir'])
        self.save(record)
        guard_pid, guard_start = spawn_detached([sys.executable, guard_script, 'watch', self.state_dir, fault_id])
        record['guard'] = dict(pid=guard_pid, starttime=guard_start)
        backstops = self.arm_backstops(record, guard_script)
        # The guard may already have reverted a very short fault: never write a gone record back.
        self.update_if_active(fault_id, guard=record['guard'], revert=record['revert'])
        result['backstops'] = backstops
        if record.get('persist_dir'):
            result['boot_hook'] = self.install_boot_hook(record)
        ctx = InjectContext(self, record)
        if params.get('start_at') is not None:
            # Every host of an experiment got the same start_at: they prepared in whatever order
            # the controller reached them, and inject together. How long this host waited (below 0:
            # it was ready only after start_at) tells whether the controller's lead was enough.
            result['start_slack'] = round(params['start_at'] - time.time(), 3)
            time.sleep(max(0.0, result['start_slack']))
        try:
            self.fault.inject(ctx)
        except Exception as exc:  # pylint: disable=broad-except
            undone = _guard.revert_fault(self.state_dir, fault_id, 'inject-failed')
            message = exc.args[0] if isinstance(exc, FaultError) else 'injecting the %s fault failed: %s' % (self.kind, exc)
            self.module.fail_json(msg=message, fault_id=fault_id, exception=traceback.format_exc(),
                                  reverted=bool(undone and undone['revert_ok']))
        record['status'] = 'active'
        record['injected_at'] = injected_at = time.time()
        record['expires_at'] = expires_at = injected_at + duration
        self.update_if_active(fault_id, status='active', injected_at=injected_at, expires_at=expires_at)
        # The timer goes to the final deadline, known only now; the guard and the watchdog covered the injection.
        backstops['timer'] = self.arm_backstop_timer(record, guard_script)
        try:
            effect = self.fault.measure(ctx)
        except Exception as exc:  # pylint: disable=broad-except
            effect = dict(error='measuring the effect failed: %s' % exc)
        record['effect'] = effect
        self.update_if_active(fault_id, effect=effect)
        result.update(details=record['details'], effect=effect, guard_pid=guard_pid, record=self.path(fault_id),
                      injected_at=injected_at, expires_at=expires_at)
        return result

    def arm_backstops(self, record, guard_script):
        """The first line of defence behind the guard: the state dir's watchdog."""
        backstops = dict(watchdog=None, timer=None)
        try:
            backstops['watchdog'] = _guard.ensure_watchdog(self.state_dir, sys.executable, guard_script) or 'running'
        except (IOError, OSError) as exc:
            self.module.warn('could not start the watchdog of %s: %s; only the guard protects fault %s'
                             % (self.state_dir, exc, record['fault_id']))
        return backstops

    def arm_backstop_timer(self, record, guard_script):
        """Where systemd is PID 1, a transient timer at the hard deadline; reverting removes it."""
        timer = _guard.arm_backstop_timer(self.state_dir, record, sys.executable, guard_script)
        if timer:
            record['revert'].append(_guard.disarm_action(timer))
            if not self.update_if_active(record['fault_id'], revert=record['revert']):
                _guard.execute_actions([_guard.disarm_action(timer)], timeout=30)
        return timer

    def install_boot_hook(self, record):
        try:
            hook = _guard.install_boot_hook(record['persist_dir'], sys.executable)
        except (IOError, OSError, _guard.RevertError) as exc:
            hook = None
            self.module.warn('installing the boot hook failed: %s' % exc)
        if hook is None:
            self.module.warn('fault %s outlives a reboot, but this host has no systemd as PID 1 (as root) and no crontab '
                             'to revert it at boot: after a reboot, run halt.yml or chaos_faults with persist_dir=%s'
                             % (record['fault_id'], record['persist_dir']))
        return hook

    def renew(self, record, now):
        """An identical fault is active: leave it alone, except to renew its lease."""
        params = self.module.params
        renewed = False
        lease = params['lease'] if params['lease'] is not None else record.get('lease')
        if lease is not None and not self.module.check_mode:
            current = _guard.renew_lease(self.state_dir, record['fault_id'], lease, now)
            if current is not None:
                record = current
                renewed = True
        return dict(changed=False, renewed=renewed, fault_id=record['fault_id'], kind=self.kind,
                    plan=record.get('plan'), state_dir=self.state_dir, started_at=record['started_at'],
                    expires_at=record['expires_at'], lease_expires_at=record.get('lease_expires_at'),
                    injected_at=record.get('injected_at'), details=record.get('details', {}), effect=record.get('effect', {}),
                    guard_pid=(record.get('guard') or {}).get('pid'), record=self.path(record['fault_id']),
                    msg='an identical %s fault is already active' % self.kind)

    # -- absent --------------------------------------------------------------------
    def absent(self):
        params = self.module.params
        if params['fault_id']:
            try:
                record = _guard.read_record(self.path(params['fault_id']))
            except ValueError:
                record = {'fault_id': params['fault_id']}
            targets = [record] if record is not None else []
        else:
            targets = self.active()
        result = dict(changed=bool(targets), reverted=[], state_dir=self.state_dir)
        if params['fault_id'] and not targets:
            # Already over: say how it ended (its deadline, a lease, a helper that died early).
            entry = _guard.read_history(self.state_dir, params['fault_id'])
            if entry is not None:
                result['ended'] = dict((k, entry.get(k)) for k in ('fault_id', 'reverted_by', 'reverted_at', 'final_effect'))
        if self.module.check_mode or not targets:
            result['reverted'] = [r['fault_id'] for r in targets]
            return result
        done = _guard.revert_many([(self.state_dir, r['fault_id']) for r in targets], 'module:absent',
                                  timeout=params['revert_timeout'])
        result['reverted'] = done['reverted']
        if done['final_effects']:
            result['final_effects'] = done['final_effects']
        failures = done['failures']
        result['changed'] = bool(result['reverted'])
        if failures:
            self.module.fail_json(msg='could not fully revert: %s' % '; '.join(failures), **result)
        return result

    def run(self):
        self.validate()
        if self.module.params['state'] == 'present':
            result = self.present()
            self.fault.after_present(result)
        else:
            result = self.absent()
            self.fault.after_absent(result)
        return result


def run_fault_module(module, fault_class):
    """The whole ``main()`` of a fault module after the AnsibleModule is built."""
    result = FaultEngine(module, fault_class).run()
    module.exit_json(**result)
