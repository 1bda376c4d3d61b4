"""The systemd paths against a real systemd as PID 1: a container of the local systemd image
(scripts/build-systemd-image.sh) with SYS_ADMIN, tmpfs /run and the host's cgroup tree read-only,
no --privileged. The modules travel over the docker connection as AnsiballZ payloads and run on
the image's Debian Python.

- chaos_process's ``systemd_unit`` selector kills the unit's main process; systemd restarts it.
- chaos_db's ``control: systemd`` stops and starts a real PostgreSQL unit; the backstops are a
  watchdog service owned by PID 1 and a transient timer, both gone after the revert.
- The timer alone reverts a fault whose guard and watchdog were both SIGKILLed.
- A reboot (the container killed and started again) in the middle of a database downtime: the
  boot hook starts the unit again, clears the records and removes itself.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

from harness import faults as h
from harness import REPO_ROOT, missing, require_docker
from harness.faults import task

SYSTEMD_IMAGE = os.environ.get('SYSTEMD_IMAGE', 'magsasa/debian-systemd:bookworm')
PG_UNIT = 'postgresql@15-main.service'
PG_PASSWORD = 'chaos-Systemd-7'
SLEEPER = 'chaos-sleeper.service'
STATE = '/run/magsasa-chaos'
PERSIST = '/var/lib/magsasa-chaos'
# systemd's transient timer runs the backstop 2 s after the deadline (AccuracySec=100ms).
TIMER_BOUND = 4.0
# From `docker start` of the killed container to PostgreSQL active again, through the boot hook.
BOOT_BOUND = 60.0

pytestmark = pytest.mark.timeout(300)


class SystemdHost(object):
    def __init__(self, name, workdir):
        self.name = name
        self.workdir = workdir
        self.inventory = dict(ansible_connection='community.docker.docker', ansible_host=name,
                              ansible_python_interpreter='/usr/bin/python3')

    def sh(self, script, check=True):
        proc = subprocess.run(['docker', 'exec', self.name, 'sh', '-c', script], capture_output=True, text=True,
                              timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError('%s: rc %d %s %s' % (script, proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout.strip()

    def show(self, unit, prop):
        return self.sh('systemctl show -p %s --value %s' % (prop, unit))

    def active(self, unit):
        return self.sh('systemctl is-active %s' % unit, check=False) == 'active'

    def json(self, path):
        text = self.sh('cat %s 2>/dev/null || true' % path)
        return json.loads(text) if text else None

    def ls(self, directory, pattern='*.json'):
        out = self.sh('cd %s 2>/dev/null && ls %s 2>/dev/null || true' % (directory, pattern))
        return out.split()

    def play(self, tasks):
        return h.run_tasks(self.workdir, tasks, host=self.inventory, timeout=180)

    def wait_booted(self, timeout=60):
        deadline = time.time() + timeout
        state = None
        while time.time() < deadline:
            state = self.sh('systemctl is-system-running 2>/dev/null || true')
            if state in ('running', 'degraded'):
                return state
            time.sleep(0.3)
        raise AssertionError('systemd in %s never finished booting (%s)' % (self.name, state))


def ensure_systemd_image():
    client = require_docker()
    try:
        client.images.get(SYSTEMD_IMAGE)
        return
    except Exception:  # docker.errors.ImageNotFound: build it (it reaches the Debian mirror)
        pass
    build = subprocess.run(['bash', str(REPO_ROOT / 'scripts' / 'build-systemd-image.sh')], capture_output=True,
                           text=True, timeout=900)
    if build.returncode != 0:
        missing('image %s could not be built: %s' % (SYSTEMD_IMAGE, (build.stdout + build.stderr)[-600:]))


@pytest.fixture(scope='module')
def systemd_host(tmp_path_factory):
    ensure_systemd_image()
    name = 'chaos-systemd-host-%s' % uuid.uuid4().hex[:8]
    subprocess.run(['docker', 'run', '-d', '--name', name, '--cap-add', 'SYS_ADMIN', '--tmpfs', '/run',
                    '--tmpfs', '/run/lock', '--tmpfs', '/tmp', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro',
                    SYSTEMD_IMAGE], check=True, capture_output=True, timeout=60)
    host = SystemdHost(name, str(tmp_path_factory.mktemp('systemd-host')))
    try:
        host.wait_booted()
        assert host.sh('readlink /proc/1/exe').endswith('systemd')
        deadline = time.time() + 30
        while not host.active(PG_UNIT) and time.time() < deadline:
            time.sleep(0.3)
        host.sh("runuser -u postgres -- psql -qc \"ALTER USER postgres PASSWORD '%s'\"" % PG_PASSWORD)
        # Started by hand from now on, as a service someone started: after a reboot only the boot hook brings it back.
        host.sh('echo manual > /etc/postgresql/15/main/start.conf')
        host.sh("printf '[Service]\\nExecStart=/bin/sleep infinity\\nRestart=always\\nRestartSec=1\\n' "
                "> /etc/systemd/system/%s && systemctl daemon-reload && systemctl start %s" % (SLEEPER, SLEEPER))
        yield host
    finally:
        subprocess.run(['docker', 'rm', '-f', name], capture_output=True, timeout=60)


def db_task(**args):
    params = dict(engine='postgresql', control='systemd', systemd_unit=PG_UNIT, login_host='127.0.0.1',
                  login_password=PG_PASSWORD)
    params.update(args)
    return task('chaos_db', **params)


def magsasa_units(host):
    return host.sh("systemctl list-units --all --plain --no-legend 'magsasa-chaos-*' | awk '{print $1}'").split()


def test_systemd_unit_selector_kills_the_main_process_and_systemd_restarts_it(systemd_host):
    host = systemd_host
    unit = SLEEPER
    assert host.show(unit, 'Restart') == 'always'
    main_pid = int(host.show(unit, 'MainPID'))
    restarts = int(host.show(unit, 'NRestarts'))
    killed, halted = host.play([
        task('chaos_process', systemd_unit=unit, signal='SIGKILL', duration=10, wait_for_restart=15),
        task('chaos_faults', 'halt', state='absent_all'),
    ])
    assert killed['changed'] and killed['details']['killed_pids'] == [main_pid], killed
    assert killed['effect']['restarted'] is True, killed['effect']
    assert int(host.show(unit, 'NRestarts')) == restarts + 1
    new_pid = int(host.show(unit, 'MainPID'))
    assert new_pid not in (0, main_pid) and host.active(unit)
    assert halted['reverted'] == [killed['fault_id']]
    assert host.ls(STATE) == []


def test_control_systemd_downtime_with_the_systemd_backstops(systemd_host):
    host = systemd_host
    assert host.active(PG_UNIT)
    (down,) = host.play([db_task(duration=10, wait=True)])
    assert down['changed'] and down['effect']['down_confirmed'] is True, down.get('msg', down)
    assert down['backstops']['watchdog'].startswith('systemd:magsasa-chaos-watchdog-'), down['backstops']
    assert down['backstops']['timer'] == 'magsasa-chaos-backstop-%s.timer' % down['fault_id']
    assert down['boot_hook']['type'] == 'systemd', down['boot_hook']
    # The downtime the module saw, from the stop to the first answered query: the rest of the duration
    # after the stop, and the restart.
    after_stop = down['expires_at'] - down['details']['stopped_at']
    assert after_stop <= down['downtime_seconds'] < after_stop + 10, (after_stop, down['downtime_seconds'])
    assert host.active(PG_UNIT)
    entry = host.json('%s/history/%s.json' % (STATE, down['fault_id']))
    assert entry['reverted_by'] == 'guard:deadline' and entry['revert_ok'], entry
    # Reverted by the guard: the timer was stopped with it, the watchdog left with nothing to watch,
    # the last fault that outlives a reboot took its boot hook and its persistent copy along.
    deadline = time.time() + 5
    while magsasa_units(host) and time.time() < deadline:
        time.sleep(0.2)
    assert magsasa_units(host) == []
    assert host.ls('/etc/systemd/system', 'magsasa-chaos-*') == []
    assert host.ls(PERSIST) == [] and host.ls(STATE) == []


def test_the_timer_reverts_when_guard_and_watchdog_are_both_killed(systemd_host):
    host = systemd_host
    (cpu,) = host.play([task('chaos_cpu', workers=1, load_percent=10, engine='python', duration=20)])
    watchdog_unit = cpu['backstops']['watchdog'].split(':', 1)[1]
    watchdog_pid = int(host.show(watchdog_unit, 'MainPID'))
    record = host.json('%s/%s.json' % (STATE, cpu['fault_id']))
    assert watchdog_pid and record['guard']['pid'] and time.time() < record['expires_at'] - 1
    host.sh('kill -KILL %d %d' % (record['guard']['pid'], watchdog_pid))
    deadline = record['expires_at'] + TIMER_BOUND + 5
    entry = None
    while time.time() < deadline and entry is None:
        entry = host.json('%s/history/%s.json' % (STATE, cpu['fault_id']))
        time.sleep(0.1)
    assert entry is not None, 'nothing reverted the fault by %.1f s past its deadline' % (time.time() - record['expires_at'])
    late = entry['reverted_at'] - record['expires_at']
    print('deadline -> reverted by the systemd timer: %.2f s' % late)
    assert entry['reverted_by'] == 'backstop-timer:deadline' and entry['revert_ok'], entry
    assert 0 < late < TIMER_BOUND, late
    assert host.ls(STATE) == []


def test_reboot_mid_downtime_the_boot_hook_starts_the_unit_again(systemd_host):
    host = systemd_host
    assert host.active(PG_UNIT)
    (down,) = host.play([db_task(duration=600)])
    fault_id = down['fault_id']
    assert not host.active(PG_UNIT)
    hook = down['boot_hook']['name']
    assert host.sh('systemctl is-enabled %s' % hook) == 'enabled'
    assert host.ls(PERSIST) == [fault_id + '.json']

    # A hard reboot: no shutdown, so nothing of ours gets a chance to revert on the way down.
    subprocess.run(['docker', 'kill', host.name], check=True, capture_output=True, timeout=60)
    started = time.time()
    subprocess.run(['docker', 'start', host.name], check=True, capture_output=True, timeout=60)
    host.wait_booted()
    while not host.active(PG_UNIT) and time.time() - started < BOOT_BOUND:
        time.sleep(0.3)
    took = time.time() - started
    print('docker start -> %s active again through the boot hook: %.1f s' % (PG_UNIT, took))
    assert host.active(PG_UNIT), 'the unit is still down %.0f s after the reboot' % took
    entry = host.json('%s/history/%s.json' % (PERSIST, fault_id))
    assert entry['reverted_by'] == 'boot-hook' and entry['revert_ok'], entry
    assert host.ls(PERSIST) == [], 'records left for the next boot'
    assert host.ls('/etc/systemd/system', 'magsasa-chaos-*') == [], 'the boot hook outlived its last fault'
    assert host.sh('systemctl is-enabled %s 2>/dev/null || true' % hook) in ('', 'not-found')
    assert host.ls(STATE) == []
