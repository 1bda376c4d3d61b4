#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r'''
---
module: chaos_db
short_description: Take a PostgreSQL or MySQL/MariaDB server down for a while and measure the downtime
version_added: 0.1.0
description:
  - Stops a database server cleanly (O(mode=clean)) or crashes it (O(mode=crash)) for O(duration) seconds.
    The guard brings it back at the deadline, or when an unrenewed O(lease) ends, even if the controller is gone.
  - The server runs in a container (O(control=container)), as a systemd unit (O(control=systemd)), or from a
    data directory controlled by C(pg_ctl) or started directly (O(control=datadir)).
  - Before anything is stopped the server must answer C(SELECT 1) with the login options given, so wrong
    credentials or a server that is already down fail the task and change nothing.
  - Readiness is asked of the server with its driver (psycopg, PyMySQL), never guessed with sleeps. With
    O(wait=true), or when the fault is ended with O(state=absent), the module returns the downtime actually
    observed, from the stop to the first answered query.
  - Bringing the server back keeps trying until O(revert_timeout); when the server is still down then, the
    task fails and says what is down and for how long it has been.
author:
  - magsasa.chaos maintainers (@magsasa)
extends_documentation_fragment:
  - magsasa.chaos.attributes.fault_module
  - magsasa.chaos.fault
  - magsasa.chaos.docker
attributes:
  check_mode:
    description: Checks that the server answers and can be found, returns the plan, stops nothing and holds no connection.
  diff_mode:
    description: Nothing to diff; the plan and the observed downtime are returned instead.
  idempotent:
    support: partial
    description: While an identical fault is active, running the module again only renews its lease.
options:
  engine:
    description:
      - The database server. V(mariadb) is the same as V(mysql).
      - Required with O(state=present).
    type: str
    choices: [postgresql, mysql, mariadb]
  action:
    description:
      - V(downtime) takes the server down for O(duration) (see O(control) and O(mode)).
      - V(connections) leaves the server up and holds O(connections) connections to it for O(duration),
        from a detached process the guard kills, so other clients are refused (connection exhaustion).
        O(control), O(mode) and their options are not used.
      - V(lock) leaves the server up and holds an exclusive lock on O(table) for O(duration) (PostgreSQL
        C(LOCK TABLE ... IN ACCESS EXCLUSIVE MODE) in an open transaction, MariaDB C(LOCK TABLES ... WRITE)), from a
        detached process the guard kills, so every other session that reads or writes the table waits (lock contention).
    type: str
    choices: [downtime, connections, lock]
    default: downtime
  intensity:
    description:
      - A preset for O(duration) (which it excludes), the database downtime of the scenario catalog
        V(light) is 10 seconds, V(heavy) 30 seconds. One of O(duration) and O(intensity) is required with
        O(state=present).
    type: str
    choices: [light, heavy]
  table:
    description:
      - The table O(action=lock) locks, optionally as C(schema.table) (PostgreSQL) or C(database.table) (MariaDB).
        Required with O(action=lock).
    type: str
  connections:
    description:
      - How many connections O(action=connections) holds. Default is as many as the server accepts
        (up to 5000), so that the next client is refused.
      - The connections are opened as O(login_user); a superuser also takes the slots reserved for superusers.
    type: int
  control:
    description:
      - V(datadir) finds the server by its data directory O(data_dir). PostgreSQL is stopped and started with
        C(pg_ctl), with the options it runs with (from C(postmaster.opts)). MariaDB is stopped with a signal and
        started again with the command line it ran with (read from C(/proc) before it is stopped), detached.
      - V(systemd) stops and starts the unit O(systemd_unit).
      - V(container) stops and starts the container O(container) through the Docker API.
    type: str
    choices: [datadir, systemd, container]
    default: datadir
  data_dir:
    description:
      - The server's data directory. Required with O(control=datadir) and O(state=present).
    type: path
  bin_dir:
    description:
      - Directory of C(pg_ctl), with O(engine=postgresql) and O(control=datadir).
      - Defaults to the directory of the C(postgres) binary the server runs.
    type: path
  run_as:
    description:
      - The user that runs the server, with O(control=datadir). Commands run through C(runuser) when the module
        runs as root and this is another user.
      - Defaults to the owner of O(data_dir) for PostgreSQL and to the user of the running server for MariaDB.
    type: str
  systemd_unit:
    description:
      - The unit of the server. Required with O(control=systemd) and O(state=present).
    type: str
  container:
    description:
      - Name or id of the server's container. Required with O(control=container) and O(state=present).
    type: str
  mode:
    description:
      - V(clean) shuts down cleanly (C(pg_ctl stop -m fast); C(SIGTERM) to C(mariadbd); C(systemctl stop);
        C(docker stop)).
      - V(crash) kills it without warning (C(SIGKILL) to the postmaster and every server process, or to
        C(mariadbd); C(systemctl kill --signal=SIGKILL); C(docker kill)), so the server recovers from its
        write-ahead log when it comes back.
    type: str
    choices: [clean, crash]
    default: clean
  stop_timeout:
    description:
      - Seconds a clean shutdown may take before the task fails (the guard still brings the server back).
    type: int
    default: 60
  wait:
    description:
      - Wait until the guard has brought the server back at the end of O(duration) and it answers queries, and
        return the downtime observed. Fails when it is still down O(revert_timeout) seconds after the deadline.
    type: bool
    default: false
  login_host:
    description:
      - Host to query the server at for the readiness checks.
    type: str
    default: localhost
  login_port:
    description:
      - Port of the server. Defaults to V(5432) for PostgreSQL and V(3306) for MySQL/MariaDB.
    type: int
  login_user:
    description:
      - User to query as. Defaults to V(postgres) for PostgreSQL and V(root) for MySQL/MariaDB.
    type: str
  login_password:
    description:
      - Password of O(login_user).
    type: str
  login_db:
    description:
      - Database to connect to. Defaults to V(postgres) for PostgreSQL and none for MySQL/MariaDB.
    type: str
requirements:
  - psycopg (3) for PostgreSQL, PyMySQL for MySQL/MariaDB, on the host the module runs on
  - Docker SDK for Python with O(control=container)
notes:
  - With O(control=datadir) the module must run on the database host, as root or as the server's user.
    A PostgreSQL server brought back by the guard writes its log to C(magsasa_chaos_restart.log) in the
    data directory, as does a MariaDB server for its standard output.
  - With O(control=systemd) and O(mode=crash), a unit with C(Restart=) is restarted by systemd before the
    deadline; that is the point of such a test, and the downtime observed shows it.
seealso:
  - module: magsasa.chaos.chaos_faults
'''

EXAMPLES = r'''
- name: PostgreSQL down for 10 seconds (fast shutdown), measuring the downtime
  magsasa.chaos.chaos_db:
    engine: postgresql
    control: datadir
    data_dir: /var/lib/postgresql/15/main
    duration: 10
    wait: true
    login_user: chaos
    login_password: "{{ vault_chaos_db_password }}"
  register: chaos_db_result

- name: Crash MariaDB in its container; the guard starts it again after 30 seconds
  magsasa.chaos.chaos_db:
    engine: mariadb
    control: container
    container: shop-db
    mode: crash
    duration: 30
    login_host: 127.0.0.1
    login_user: root
    login_password: "{{ vault_mariadb_root_password }}"

- name: Hold every connection PostgreSQL accepts for 20 seconds
  magsasa.chaos.chaos_db:
    engine: postgresql
    action: connections
    duration: 20
    login_user: chaos
    login_password: "{{ vault_chaos_db_password }}"

- name: End it early and get the downtime
  magsasa.chaos.chaos_db:
    state: absent
    fault_id: "{{ chaos_db_result.fault_id }}"
    engine: postgresql
    login_user: chaos
    login_password: "{{ vault_chaos_db_password }}"
'''

RETURN = r'''
ended:
  description:
    - When O(fault_id) names a fault that is already over, how it ended - C(fault_id), C(reverted_by)
      (V(guard:deadline), V(guard:lease-expired), ...), C(reverted_at) and C(final_effect).
  returned: when O(state=absent) and the fault had already ended
  type: dict
expires_at:
  description: Epoch seconds when the fault ends by itself.
  returned: success and O(state=present)
  type: float
fault_id:
  description: The id of the fault (give it to O(state=absent) to end the fault early).
  returned: success
  type: str
  sample: db-5e0c1d9a2b
downtime_seconds:
  description: Seconds from the stop to the first query the server answered again, when it was measured
    (O(wait=true), or O(state=absent) for the fault it ended); null otherwise.
  returned: always
  type: float
  sample: 10.42
final_effects:
  description: What the helpers of the reverted faults measured last, by fault id.
  returned: when O(state=absent) reverted a fault whose helper reported a final measurement
  type: dict
guard_pid:
  description: Pid of the detached guard process that reverts the fault.
  returned: success and O(state=present) and not check mode
  type: int
injected_at:
  description: Epoch seconds when the injection was complete (the moment the fault took effect; metrics count from here).
  returned: success and O(state=present) and not in check mode
  type: float
start_slack:
  description:
    - Seconds this host waited for O(start_at) before injecting; below 0 when it was ready only after O(start_at)
      (the controller's lead was too short for it, and it injected late by that much).
  returned: success and O(start_at) given and not in check mode
  type: float
kind:
  description: The fault kind, V(db).
  returned: success and O(state=present)
  type: str
lease_expires_at:
  description: Epoch seconds when an unrenewed lease ends the fault, or null.
  returned: success and O(state=present)
  type: float
plan:
  description: What the fault does (engine, control, mode, the server found, how it is brought back).
  returned: success with O(state=present)
  type: dict
details:
  description: What was done, recorded as it was done (C(server_pid), C(stopped_at) in epoch seconds; for
    O(action=connections) C(holder_pid), C(held_connections), C(refused_with) and C(stopped_at), when all were held).
  returned: success with O(state=present)
  type: dict
effect:
  description: What was observed. C(down_confirmed) (a query failed after the stop), C(failed_queries) and
    C(ready_at) while waiting, C(downtime_seconds).
  returned: success with O(state=present)
  type: dict
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
boot_hook:
  description: What reverts the fault after a reboot, installed with the first fault that outlives one
    and removed with the last; null (with a warning) where the host has neither systemd as PID 1 nor C(crontab).
  returned: success with O(state=present) when a new fault that outlives a reboot was injected, not in check mode
  type: dict
  contains:
    type:
      description: V(systemd) (a unit enabled for the next boot) or V(cron) (an C(@reboot) crontab entry).
      type: str
    name:
      description: The unit name, or the crontab line.
      type: str
record:
  description: Path of the fault's JSON record.
  returned: success and O(state=present) and not check mode
  type: str
renewed:
  description: Whether an identical active fault had its lease renewed instead of a new injection.
  returned: when an identical fault was already active
  type: bool
reverted:
  description: The fault ids reverted by O(state=absent).
  returned: success with O(state=absent)
  type: list
  elements: str
started_at:
  description: Epoch seconds when the fault started.
  returned: success and O(state=present)
  type: float
state_dir:
  description: The fault state directory.
  returned: always
  type: str
'''

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.magsasa.chaos.plugins.module_utils import _guard
from ansible_collections.magsasa.chaos.plugins.module_utils._containers import (
    DockerException, docker_argument_spec, docker_client, docker_required_together)
from ansible_collections.magsasa.chaos.plugins.module_utils._databases import (
    ENGINE_DEFAULTS, PASSWORD_ENV, SERVER_CONTROLS, CommandError, DatabaseError, holder_argv, is_auth_error,
    lock_statement, missing_driver, process_alive, query_once)
from ansible_collections.magsasa.chaos.plugins.module_utils._fault import (
    Fault, FaultError, fault_argument_spec, kill_action, run_fault_module, spawn_detached)

POLL_SECONDS = 0.2
INTENSITY_SECONDS = dict(light=10.0, heavy=30.0)


class DatabaseFault(Fault):
    kind = 'db'

    def __init__(self, module):
        super(DatabaseFault, self).__init__(module)
        self.engine = 'mysql' if self.params['engine'] in ('mysql', 'mariadb') else 'postgresql'
        self.defaults = ENGINE_DEFAULTS[self.engine]
        self.server = {}
        self._client = None
        self.control = SERVER_CONTROLS[self.params['control']](
            self.engine, self.params, self.readiness(), module.run_command, client=lambda: self.client)

    def outlives_reboot(self):
        # A stopped server stays stopped; held connections and locks die with the host.
        return self.params['action'] == 'downtime'

    def effective_duration(self):
        """The ``intensity`` preset's seconds, or ``duration``."""
        if self.params['intensity']:
            return INTENSITY_SECONDS[self.params['intensity']]
        return self.params['duration']

    def after_present(self, result):
        """``downtime_seconds`` from the effect; a server still down after the revert fails the task."""
        effect = result.get('effect') or {}
        result['downtime_seconds'] = effect.get('downtime_seconds')
        if effect.get('still_down'):
            errors = guard_errors(result['state_dir'], result['fault_id'], since=result['started_at'])
            self.fail('%s is STILL DOWN %ss after it was stopped (deadline plus revert_timeout passed)%s'
                      % (self.describe(), effect['down_for_seconds'],
                         '; the guard reported: %s' % '; '.join(errors) if errors else ''), **result)

    def after_absent(self, result):
        """After ``state: absent``: the downtime of the fault it ended, asked of the server when the task
        names the engine, else taken from when the guard saw the server accept connections."""
        if self.module.check_mode:
            return
        result['downtime_seconds'] = None
        for fault_id in result['reverted']:
            entry = _guard.read_history(result['state_dir'], fault_id) or {}
            stopped_at = (entry.get('details') or {}).get('stopped_at')
            if stopped_at is None or entry.get('kind') != self.kind:
                continue
            ready_at = entry.get('reverted_at')
            if self.params['engine'] and not missing_driver(self.engine):
                ready_at = wait_ready(self.engine, self.conn(), time.time() + self.params['revert_timeout'])[0]
                if ready_at is None:
                    self.fail('%s is STILL DOWN %.1fs after it was stopped, after reverting fault %s'
                              % (self.describe(), time.time() - stopped_at, fault_id), **result)
            result['downtime_seconds'] = round(ready_at - stopped_at, 3)

    # -- what we talk to -------------------------------------------------------------
    def conn(self):
        params = self.params
        return dict(host=params['login_host'], port=params['login_port'] or self.defaults['port'],
                    user=params['login_user'] or self.defaults['user'], password=params['login_password'],
                    database=params['login_db'] or self.defaults['database'])

    def describe(self):
        conn = self.conn()
        return '%s at %s:%s (%s)' % (self.defaults['label'], conn['host'], conn['port'], self.control.where())

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client(self.module)
        return self._client

    # -- before anything is done -----------------------------------------------------
    def validate(self):
        params = self.params
        if params['state'] != 'present':
            return
        missing = missing_driver(self.engine)
        if missing:
            self.fail(missing_required_lib(missing[0]), exception=missing[1])
        if params['stop_timeout'] < 1:
            self.fail('`stop_timeout` must be at least 1 second, got %d' % params['stop_timeout'])
        if params['connections'] is not None and params['connections'] < 1:
            self.fail('`connections` must be at least 1, got %d' % params['connections'])
        if params['action'] != 'downtime':
            return
        # A hand check, not required_if: the option needed depends on two fields (action and control).
        needed = self.control.option
        if not params[needed]:
            self.fail('control=%s needs `%s`' % (params['control'], needed))
        if params['control'] == 'datadir' and not os.path.isdir(params['data_dir']):
            self.fail('`data_dir` %s is not a directory' % params['data_dir'])

    def identity(self):
        identity = super(DatabaseFault, self).identity()
        identity['engine'] = self.engine
        return identity

    def plan(self):
        error = query_once(self.engine, self.conn())
        if error is not None:
            conn = self.conn()
            if is_auth_error(error):
                self.fail('wrong database credentials: login_user=%s cannot log in to %s: %s'
                          % (conn['user'], self.describe(), error))
            self.fail('%s does not answer queries before the fault, so nothing was stopped; check login_host, '
                      'login_port, login_user, login_password, login_db: %s' % (self.describe(), error))
        if self.params['action'] == 'connections':
            return dict(engine=self.engine, action='connections', connections=self.params['connections'] or 'all',
                        target=self.describe(), duration=self.effective_duration())
        if self.params['action'] == 'lock':
            error = query_once(self.engine, self.conn(), table=self.params['table'])
            if error is not None:
                self.fail('`table` %s cannot be read on %s, so it was not locked: %s'
                          % (self.params['table'], self.describe(), error))
            return dict(engine=self.engine, action='lock', table=self.params['table'],
                        statement=lock_statement(self.engine, self.params['table']), target=self.describe(),
                        duration=self.effective_duration())
        try:
            self.server = self.control.locate()
        except (DatabaseError, DockerException, IOError, OSError) as exc:
            self.fail('cannot find the server of %s: %s' % (self.describe(), exc))
        plan = dict(engine=self.engine, action='downtime', control=self.params['control'], mode=self.params['mode'],
                    target=self.describe(), duration=self.effective_duration())
        plan.update((k, v) for k, v in self.server.items() if k != 'start')
        return plan

    def readiness(self):
        conn = self.conn()
        return dict(host=conn['host'], port=conn['port'])

    # -- the fault -------------------------------------------------------------------
    def inject(self, ctx):
        if self.params['action'] != 'downtime':
            return self.hold(ctx)
        ctx.on_revert(self.control.revert_action(ctx.install_program))
        stopped_at = time.time()
        ctx.detail(stopped_at=stopped_at, server_pid=self.server.get('server_pid'))
        try:
            self.control.stop()
        except CommandError as exc:
            raise FaultError(str(exc))
        except (DockerException, DatabaseError, IOError, OSError) as exc:
            raise FaultError('stopping %s failed: %s' % (self.describe(), exc))
        ctx.detail(stopped=time.time())

    def hold(self, ctx):
        """Hold connections (or one that holds a table lock) for the fault's duration, from a detached
        process the guard kills."""
        status = os.path.join(ctx.engine.state_dir, '%s.holder-status' % ctx.record['fault_id'])
        ctx.on_revert(dict(type='remove', path=status))
        # The guard ends the hold at the fault's deadline, which moves by however long opening the
        # connections took; the holder's own end is only the backstop for a dead guard.
        spec = dict(engine=self.engine, conn=dict(self.conn(), password=None), connections=self.params['connections'],
                    expires_at=ctx.worker_deadline, status=status)
        if self.params['action'] == 'lock':
            spec['lock'] = lock_statement(self.engine, self.params['table'])
        env = dict(os.environ)
        if self.params['login_password'] is not None:
            env[PASSWORD_ENV] = self.params['login_password']
        pid, starttime = spawn_detached(holder_argv(spec, ctx.install_program), env=env)
        ctx.on_revert(kill_action(pid, starttime))
        ctx.detail(holder_pid=pid)
        deadline = time.time() + 60
        while not os.path.exists(status):
            if not process_alive(pid, starttime) or time.time() >= deadline:
                raise FaultError('the connection holder for %s did not report how many connections it opened'
                                 % self.describe())
            time.sleep(0.05)
        with open(status) as handle:
            held = json.load(handle)
        if not held['held']:
            if self.params['action'] == 'lock':
                raise FaultError('could not lock `table` %s on %s: %s' % (self.params['table'], self.describe(), held['error']))
            raise FaultError('could not open a single connection to %s: %s' % (self.describe(), held['error']))
        ctx.detail(stopped_at=held['full_at'], held_connections=held['held'], refused_with=held['error'])

    def measure(self, ctx):
        details = ctx.record['details']
        table = self.params['table'] if self.params['action'] == 'lock' else None
        effect = dict(down_confirmed=query_once(self.engine, self.conn(), timeout=1, table=table) is not None,
                      downtime_seconds=None)
        if not self.params['wait']:
            return effect
        deadline = ctx.expires_at + self.params['revert_timeout'] + 20
        state_dir, fault_id = ctx.engine.state_dir, ctx.record['fault_id']
        ready_at, failed = wait_ready(self.engine, self.conn(), deadline, table=table,
                                      gave_up=lambda: guard_errors(state_dir, fault_id, since=ctx.started_at))
        effect['failed_queries'] = failed
        effect['ready_at'] = ready_at
        if ready_at is None:
            effect['still_down'] = True
            effect['down_for_seconds'] = round(time.time() - details['stopped_at'], 3)
            return effect
        effect['downtime_seconds'] = round(ready_at - details['stopped_at'], 3)
        # Return only once the guard has finished its revert too, so the task's result is final (this
        # reads our own state directory, not the server).
        while _guard.read_history(state_dir, fault_id) is None and time.time() < deadline:
            time.sleep(POLL_SECONDS)
        effect['revert_errors'] = guard_errors(state_dir, fault_id, since=ctx.started_at)
        return effect


def wait_ready(engine, conn, deadline, gave_up=None, table=None):
    """Query until the server answers, ``deadline`` passes or ``gave_up()`` says the guard stopped trying.
    Returns (answered at or None, failed queries).

    Why these queries do not change the downtime they measure: the server comes back when the guard
    starts it at the fault's deadline, a timer nothing here can move. While it is down, a query is a
    refused connection that the server never sees; while it starts, it is one client connection every
    POLL_SECONDS that the server turns away until it is ready, less than any application retrying does.
    ``bench/bench_observer.py`` compares this downtime with one the bench causes and watches itself."""
    failed = 0
    while True:
        if query_once(engine, conn, table=table) is None:
            return time.time(), failed
        failed += 1
        if time.time() >= deadline or (gave_up is not None and gave_up()):
            return None, failed
        time.sleep(POLL_SECONDS)


def guard_errors(state_dir, fault_id, since=0):
    """The failed revert steps of the fault's revert (if it was reverted after ``since``)."""
    entry = _guard.read_history(state_dir, fault_id)
    if not entry or entry.get('reverted_at', 0) < since:
        return []
    return [r['error'] for r in entry.get('revert_results', []) if not r.get('ok')]


def main():
    argument_spec = fault_argument_spec()
    argument_spec.update(docker_argument_spec())
    argument_spec.update(
        engine=dict(type='str', choices=['postgresql', 'mysql', 'mariadb']),
        action=dict(type='str', default='downtime', choices=['downtime', 'connections', 'lock']),
        table=dict(type='str'),
        intensity=dict(type='str', choices=['light', 'heavy']),
        connections=dict(type='int'),
        control=dict(type='str', default='datadir', choices=['datadir', 'systemd', 'container']),
        data_dir=dict(type='path'),
        bin_dir=dict(type='path'),
        run_as=dict(type='str'),
        systemd_unit=dict(type='str'),
        container=dict(type='str'),
        mode=dict(type='str', default='clean', choices=['clean', 'crash']),
        stop_timeout=dict(type='int', default=60),
        wait=dict(type='bool', default=False),
        login_host=dict(type='str', default='localhost'),
        login_port=dict(type='int'),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_db=dict(type='str'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[('state', 'present', ('duration', 'intensity'), True), ('state', 'present', ('engine',)),
                     ('action', 'lock', ('table',))],
        mutually_exclusive=[('duration', 'intensity')],
        required_together=docker_required_together(),
        supports_check_mode=True,
    )
    run_fault_module(module, DatabaseFault)


if __name__ == '__main__':
    main()
