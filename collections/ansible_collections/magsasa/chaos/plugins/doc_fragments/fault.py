# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):

    # The lifecycle every fault module shares (module_utils/_fault.py).
    DOCUMENTATION = r'''
options:
  state:
    description:
      - V(present) injects the fault, or renews the lease of an identical active fault.
      - V(absent) reverts the fault named by O(fault_id), or every active fault of this kind when
        O(fault_id) is not given. Reverting a fault that is already gone is not an error.
    type: str
    choices: [present, absent]
    default: present
  duration:
    description:
      - How long the fault lasts, in seconds. Required with O(state=present).
      - The fault ends by itself O(duration) seconds after the injection took effect (the returned C(injected_at)), even if
        nothing ever talks to the host again (the guard, a detached process per fault, reverts it).
      - Behind the guard stands a watchdog, one process per O(state_dir), which reverts at once a fault
        whose guard died and, 1 second past the deadline, one whose guard is stuck; guard and watchdog
        restart each other. Where systemd is PID 1 the watchdog runs as a transient service and a
        transient timer reverts the fault 2 seconds past its deadline even if both are gone.
    type: float
  max_duration:
    description:
      - Safety cap on O(duration), in seconds. A longer O(duration) is refused before anything is injected.
    type: float
    default: 3600.0
  fault_id:
    description:
      - Identifier of the fault. Generated as C(<kind>-<random>) when not given.
      - With O(state=present) and an active fault of this id and the same parameters, nothing is
        injected again and the lease is renewed.
      - 1 to 64 letters, digits, V(_), V(.) or V(-).
    type: str
  lease:
    description:
      - Seconds the fault stays unless renewed. Running the module again with the same O(fault_id)
        and O(state=present) renews it. An unrenewed lease reverts the fault early, so a dead
        controller or a lost SSH link ends the fault within O(lease) seconds instead of O(duration).
      - The lease is also a file next to the record, C(<fault_id>.lease). Rewriting it renews the lease, its
        modification time being the renewal and its content the seconds promised from then on. That is how
        P(magsasa.chaos.chaos_hold#module) renews over the host's connection without starting Python.
    type: float
  start_at:
    description:
      - Epoch seconds (this host's clock) at which to inject. The module validates, writes the record and starts the
        guard first, then waits until this moment, so the same O(start_at) given to many hosts makes their faults
        start together however the controller's forks reached them. A moment in the past injects at once; more than
        300 seconds ahead is refused.
    type: float
  state_dir:
    description:
      - Directory on the target holding one JSON record per active fault, the guard script and the
        revert history. Defaults to C(/run/magsasa-chaos) for root, C(~/.cache/magsasa-chaos) otherwise.
    type: path
  persist_dir:
    description:
      - Directory on persistent storage that keeps a copy of the record of a fault whose effect outlives
        a reboot (a stopped or paused container, a stopped database, files on disk), with the guard script.
      - With the first such record a boot hook is installed (a systemd unit where systemd is PID 1 and the
        module runs as root, else an C(@reboot) crontab entry); at boot it reverts the records a previous
        boot left active. It is removed with the last record. Where neither exists the module warns.
      - Defaults to C(/var/lib/magsasa-chaos) for root, C(~/.local/state/magsasa-chaos) otherwise.
    type: path
  revert_timeout:
    description:
      - Seconds to keep retrying a revert step that fails before giving up and reporting it.
    type: float
    default: 60.0
notes:
  - The active fault records are listed and reverted all at once with M(magsasa.chaos.chaos_faults).
  - The guard and the watchdog lower their OOM score (C(oom_score_adj) -900) so that a memory fault never has
    them killed first. That needs C(CAP_SYS_RESOURCE); without it they run at the default score.
'''
