# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure logic of an experiment over many hosts: which hosts it touches (inventory, --limit,
blast radius), each host's part of the record from its task results, and the experiment's
status from the parts. Plain data in, plain data out."""


# hold endings that end the experiment early, and what the experiment's status becomes
ABORTING = {'stop-condition': 'aborted', 'reverted-outside': 'aborted'}
FAILING = ('error', 'unreachable', 'lease-lapsed', 'guard')


def select_targets(matched, in_play, max_hosts, pattern):
    """``(targets, skip_reason, note)`` for a scenario whose ``pattern`` matched ``matched`` hosts of
    the inventory, of which ``in_play`` are in this run (after --limit). More than ``max_hosts``
    are capped to the first ``max_hosts`` (the note says so, naming both numbers)."""
    max_hosts = int(max_hosts)
    if max_hosts < 1:
        raise ValueError('chaos_max_hosts must be at least 1, got %s' % max_hosts)
    play = set(in_play)
    if not matched:
        return [], "no host in this inventory matches targets '%s'" % pattern, None
    chosen = [h for h in matched if h in play]
    if not chosen:
        return [], ("targets '%s' match %d host(s) of the inventory (%s), none of them in this run "
                    "(--limit / chaos_hosts); nothing was injected"
                    % (pattern, len(matched), ', '.join(matched[:5]) + (', ...' if len(matched) > 5 else ''))), None
    if len(chosen) > max_hosts:
        return chosen[:max_hosts], None, (
            "targets '%s' resolve to %d hosts, more than chaos_max_hosts %d: faulting only %s"
            % (pattern, len(chosen), max_hosts, ', '.join(chosen[:max_hosts])))
    return chosen, None, None


def task_error(result):
    """The real message of a failed or unreachable task result, or None when it succeeded."""
    if not isinstance(result, dict) or result.get('skipped'):
        return None
    if result.get('unreachable'):
        return 'unreachable: %s' % (result.get('msg') or 'no message')
    if result.get('failed'):
        msg = result.get('msg') or result.get('stderr') or 'failed without a message'
        # A module whose connection broke mid-run (a pipelined docker exec into a stopped
        # container) fails with a parse error; the connection's own words are in module_stderr.
        stderr = (result.get('module_stderr') or '').strip()
        return '%s: %s' % (msg, stderr[-500:]) if stderr and stderr not in msg else msg
    return None


def _num(value):
    return None if value is None else float(value)


def host_part(host, inject=None, hold=None, revert=None, residue=None, lock=None):
    """One host's part of the record: its fault window in the controller's clock, how it ended."""
    inject, hold, revert, residue, lock = (r if isinstance(r, dict) else {} for r in (inject, hold, revert, residue, lock))
    offset = _num(hold.get('clock_offset'))
    history = {}
    for source in (hold.get('history'), ):
        if source:
            history.update(source)
    for entry in list(residue.get('history') or []) + list(revert.get('history') or []):
        history.update(dict((k, v) for k, v in entry.items() if v is not None))
    hold_error = hold.get('reason') if hold.get('ended') in ('error', 'unreachable') else None
    error = task_error(lock) or task_error(inject) or hold_error or task_error(hold) or task_error(revert)
    # the connection to the host failed (not the fault on it): the record says so
    unreachable = hold.get('ended') == 'unreachable' or any(r.get('unreachable') for r in (lock, inject, hold, revert))
    injected = _num(inject.get('injected_at')) if inject.get('injected_at') is not None else _num(history.get('injected_at'))
    reverted = _num(history.get('reverted_at'))
    # the hold ends when the revert begins; the revert's own duration is shown apart
    released = _num(history.get('revert_started_at')) if history.get('revert_started_at') is not None else reverted
    ended = hold.get('ended')
    by = history.get('reverted_by') or ''
    if error:
        ended = 'unreachable' if unreachable else 'error'
    elif ended in (None, 'slice', 'stopped', 'deadline', 'instant'):
        if by.startswith('chaos_faults:absent') and ended not in ('deadline', 'instant'):
            ended = 'revert'
        elif by == 'guard:deadline' or ended in ('deadline', 'instant'):
            ended = 'deadline' if ended != 'instant' else 'instant'
        elif by == 'guard:lease-expired':
            ended = 'lease-lapsed'
        elif ended is None and injected is None:
            ended = None
    shift = offset or 0.0
    part = {
        'host': host,
        'status': 'failed' if error or ended in FAILING else 'ok',
        'ended': ended,
        'reason': error or hold.get('reason'),
        'clock_offset': None if offset is None else round(offset, 4),
        'injected_at': None if injected is None else round(injected - shift, 4),
        'reverted_at': None if released is None else round(released - shift, 4),
        'held_seconds': None if injected is None or released is None else round(released - injected, 3),
        'revert_seconds': None if released is None or reverted is None else round(reverted - released, 3),
        'reverted_by': by or None,
        # seconds the host waited for the common start (below 0: it was ready late, and injected late)
        'start_slack': _num(inject.get('start_slack')),
    }
    return part


def host_parts(hosts, hostvars, planned=None):
    """Every target's part from the registered results kept in ``hostvars``."""
    parts = []
    for host in hosts:
        hv = hostvars.get(host, {}) if hasattr(hostvars, 'get') else {}
        parts.append(host_part(host, hv.get('chaos_experiment_inject'), hv.get('chaos_experiment_hold'),
                               hv.get('chaos_experiment_rollback'), hv.get('chaos_experiment_residue_read'),
                               hv.get('chaos_experiment_lock')))
    return parts


def busy_faults(hosts, hostvars, preflight_fresh=False):
    """Ids of the faults the targets already carry: what each one's lock query found, or, where the
    experiment did not ask because the run's preflight just did (``preflight_fresh``), what that found."""
    busy = []
    for host in hosts:
        hv = hostvars.get(host, {}) if hasattr(hostvars, 'get') else {}
        answer = hv.get('chaos_experiment_lock')
        if not (isinstance(answer, dict) and 'faults' in answer) and preflight_fresh:
            answer = hv.get('chaos_experiment_preflight_host')
        faults = answer.get('faults') if isinstance(answer, dict) else None
        busy.extend(f.get('fault_id') for f in faults or [])
    return busy


def lock_hosts(hosts, hostvars, preflight_fresh=False):
    """Targets that must be asked for their active faults: all of them, except, for the run's first
    experiment (``preflight_fresh``), those whose preflight answer already lists them."""
    ask = []
    for host in hosts:
        hv = hostvars.get(host, {}) if hasattr(hostvars, 'get') else {}
        answer = hv.get('chaos_experiment_preflight_host')
        if not (preflight_fresh and isinstance(answer, dict) and 'faults' in answer):
            ask.append(host)
    return ask


def rollback_hosts(hosts, hostvars):
    """Targets to roll back and check for residue: every one but those whose holder watched the
    guard revert the fault with every step succeeding (``chaos_experiment_hold.history.revert_ok``)."""
    out = []
    for host in hosts:
        hv = hostvars.get(host, {}) if hasattr(hostvars, 'get') else {}
        hold = hv.get('chaos_experiment_hold')
        history = hold.get('history') if isinstance(hold, dict) else None
        if not (isinstance(history, dict) and history.get('revert_ok')):
            out.append(host)
    return out


def spread(parts):
    """Seconds between the first and the last host's injection (controller clock), or None."""
    times = [p['injected_at'] for p in parts if p.get('injected_at') is not None]
    return round(max(times) - min(times), 3) if len(times) > 1 else (0.0 if times else None)


def experiment_outcome(parts):
    """``(status, reason)`` the parts force on the experiment, or ``(None, None)`` when they are all fine."""
    failed = [p for p in parts if p['status'] == 'failed']
    if failed:
        return 'failed', '; '.join(
            '%s: %s%s' % (p['host'], p['ended'] or 'failed', ' - %s' % p['reason'] if p.get('reason') else '')
            for p in failed)
    aborted = [p for p in parts if p.get('ended') in ABORTING]
    if aborted:
        return ABORTING[aborted[0]['ended']], '; '.join(
            '%s: %s' % (p['host'], p.get('reason') or p['ended']) for p in aborted)
    return None, None


def inject_results(hosts, hostvars):
    """What each target's injection reported (details, effect, plan), in the targets' order."""
    out = []
    for host in hosts:
        hv = hostvars.get(host, {}) if hasattr(hostvars, 'get') else {}
        result = hv.get('chaos_experiment_inject')
        result = result if isinstance(result, dict) else {}
        out.append({'host': host, 'details': result.get('details') or {}, 'effect': result.get('effect') or {},
                    'plan': result.get('plan') or {}})
    return out
