# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure helpers of the hold (the action plugin magsasa.chaos.chaos_hold): the shell line that
renews a lease over any connection, the shell loop that runs it once per line its holder sends
(one long-lived channel per host instead of a command per tick), reading the target's clock and
the line's status from their output, and naming how a fault that is gone ended from its history
entry."""

import json
import shlex

GONE_MARKER = 'MAGSASA_CHAOS_FAULT_GONE'
TICK_END_MARKER = 'MAGSASA_CHAOS_TICK_END'
CLOCK_COMMAND = 'date +%s.%N'

# reverted_by of a history entry -> how the host's part of the experiment ended
_ENDINGS = (
    ('guard:deadline', 'deadline', None),
    ('guard:lease-expired', 'lease-lapsed', 'the lease lapsed before the planned end (renewals did not arrive in time)'),
    ('guard:', 'guard', 'the guard reverted the fault early ({by})'),
    ('inject-failed', 'error', 'the injection failed and was undone'),
)


def renewal_command(state_dir, fault_id, lease):
    """One POSIX shell line: print the host's clock, then renew the lease by rewriting its file
    (mtime = now, content = the lease in seconds), or, when the fault's record is no longer active,
    print the gone marker and the fault's history entry (the guard writes it before it removes the
    record), so a late renewal cannot revive a lapsed fault and the holder learns how it ended in
    the same round trip."""
    state_dir = state_dir.rstrip('/')
    record = shlex.quote('%s/%s.json' % (state_dir, fault_id))
    path = shlex.quote('%s/%s.lease' % (state_dir, fault_id))
    history = shlex.quote('%s/history/%s.json' % (state_dir, fault_id))
    return '%s; if [ -e %s ]; then printf %%s %s > %s; else echo %s; cat %s 2>/dev/null; true; fi' % (
        CLOCK_COMMAND, record, shlex.quote('%g' % float(lease)), path, GONE_MARKER, history)


def gone_history(stdout):
    """The history entry a renewal printed after the gone marker, or None (no marker, no entry yet,
    or not a JSON object)."""
    head, marker, tail = stdout.partition(GONE_MARKER)
    if not marker or not tail.strip():
        return None
    try:
        entry = json.loads(tail)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def renewal_loop(command):
    """A POSIX shell loop that runs ``command`` once for every line it reads on stdin and ends each
    answer with the end marker and the command's exit status. It renews nothing by itself: only a
    line from the holder does, so when the controller dies or the link is lost (stdin closes or
    stays silent) the renewals stop and the lease lapses as it would with a command per tick."""
    return 'while IFS= read -r _; do { %s; } 2>&1; echo %s $?; done' % (command, TICK_END_MARKER)


def split_answer(output):
    """``(stdout, rc)`` of one answer of :func:`renewal_loop` (its text up to the end marker), or
    ``(output, None)`` when the end marker is missing."""
    head, marker, tail = output.rpartition(TICK_END_MARKER)
    if not marker:
        return output, None
    try:
        return head, int(tail.split()[0])
    except (IndexError, ValueError):
        return head, None


def parse_clock(stdout):
    """The epoch seconds the target printed first, or None when its ``date`` lacks %N."""
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = float(line)
        except ValueError:
            return None
        return value if '.' in line else None
    return None


def ended_by(history):
    """``(ended, reason)`` for a fault whose record vanished during the hold."""
    if not history:
        return 'reverted-outside', 'the fault record is gone and left no history entry'
    by = history.get('reverted_by') or 'unknown'
    for prefix, ended, reason in _ENDINGS:
        if by.startswith(prefix):
            return ended, reason.format(by=by) if reason else None
    return 'reverted-outside', 'the fault was reverted outside this experiment (%s) before its planned end' % by


def history_summary(history):
    """The part of a history entry the experiment record keeps."""
    if not history:
        return None
    return dict((key, history.get(key)) for key in ('injected_at', 'revert_started_at', 'reverted_at', 'reverted_by', 'revert_ok'))
