# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The probe sampler behind ``magsasa.chaos.resilience_probe``.

Standard library only, and no imports from ansible apart from ``_proc`` (process
identity from /proc) and ``_atomic`` (atomic file writes): ``launch()`` copies this
very file into the probe directory with ``_atomic.install_program``, which puts
those two next to it (:data:`PROGRAM_NEEDS`), and runs that copy as a detached
background process, because the AnsiballZ temp dir the module runs from vanishes
when the task ends.

Sampling runs on a fixed timeline: slot ``k`` is due at ``start + k *
interval`` on the monotonic clock. A scheduler thread hands each due slot to an
idle worker thread, growing the pool up to ``concurrency``, so a slow or
hanging response never delays the next slot. A slot is *missed* (not probed) when
no worker was free for it, or when the scheduler itself fell more than one interval
behind (the process was stopped or starved) and skipped ahead to the latest due slot
rather than fire a burst of catch-up requests. A slot is *late* when its request
left more than one interval after it was due (it is probed, with its real send time).

Every sample is one JSON line::

    {"seq": 12, "scheduled": 1764440000.12, "sent": 1764440000.1203,
     "latency_ms": 3.1, "ok": true, "status": 200, "error": null}

``scheduled`` and ``sent`` are epoch seconds derived from one wall-clock
reading at start plus monotonic offsets, so the series never jumps when the
wall clock is stepped.
"""

import errno
import http.client as http_client
import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

try:
    # The copy run from the probe directory imports the copies installed next to it.
    import magsasa_chaos_atomic as _atomic
    import magsasa_chaos_proc as _proc
except ImportError:
    from ansible_collections.magsasa.chaos.plugins.module_utils import _atomic, _proc

# The modules the copied sampler imports, installed next to it under their PROGRAM_FILENAME.
PROGRAM_NEEDS = (_proc, _atomic)

HEARTBEAT_SECONDS = 0.5
# Threads hand the GIL over every 5 ms by default; a 10 ms timeline needs the scheduler to get it sooner.
GIL_SWITCH_SECONDS = 0.001
BODY_LIMIT = 1024 * 1024


class ProbeError(Exception):
    """A probe could not be configured, launched or found (the message names the value)."""


def probe_paths(probe_dir, probe_id):
    base = os.path.join(probe_dir, probe_id)
    return {
        'config': base + '.config.json',
        'script': base + '.sampler.py',
        'samples': base + '.samples.jsonl',
        'state': base + '.state.json',
        'log': base + '.log',
    }


def _error_text(exc):
    if isinstance(exc, socket.timeout):
        return 'timed out'
    text = str(exc) or type(exc).__name__
    return '%s: %s' % (type(exc).__name__, text)


def parse_json_path(path):
    """Split a simple JSON path (``$.data.items[0].name`` or ``data.items.0.name``) into keys."""
    text = path.strip()
    if text.startswith('$'):
        text = text[1:]
    parts = []
    for token in re.findall(r'\[(\d+)\]|\[["\']([^"\']+)["\']\]|([^.\[\]]+)', text):
        index, quoted, name = token
        if index:
            parts.append(int(index))
        elif quoted:
            parts.append(quoted)
        else:
            parts.append(int(name) if name.isdigit() else name)
    if not parts and text not in ('', '.'):
        raise ProbeError('json_path %r is not a valid path like $.status or data.items[0].name' % path)
    return parts


def json_path_lookup(document, parts):
    """Return (found, value) for the keys of a parsed JSON path."""
    current = document
    for key in parts:
        if isinstance(key, int) and isinstance(current, list) and -len(current) <= key < len(current):
            current = current[key]
        elif isinstance(current, dict) and (key in current or str(key) in current):
            current = current[key] if key in current else current[str(key)]
        else:
            return False, None
    return True, current


class HttpCheck:
    """One HTTP(S) request per call, on a fresh connection, judged by status, regex and JSON path."""

    def __init__(self, config):
        parts = urlsplit(config['url'])
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ProbeError('url must be an http:// or https:// URL with a host, got %r' % config['url'])
        self.https = parts.scheme == 'https'
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or '/') + ('?' + parts.query if parts.query else '')
        self.method = config.get('method') or 'GET'
        self.headers = dict(config.get('headers') or {})
        self.headers.setdefault('Connection', 'close')
        self.headers.setdefault('User-Agent', 'magsasa.chaos-resilience-probe')
        body = config.get('body')
        self.body = body.encode('utf-8') if body is not None else None
        self.expected = list(config.get('expected_status') or [200])
        self.timeout = float(config['timeout'])
        self.body_regex = re.compile(config['body_regex']) if config.get('body_regex') else None
        self.json_path = config.get('json_path')
        self.json_parts = parse_json_path(self.json_path) if self.json_path else None
        self.json_value = config.get('json_value')
        self.context = None
        if self.https:
            self.context = ssl.create_default_context()
            if not config.get('validate_certs', True):
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def __call__(self):
        started = time.monotonic()
        if self.https:
            conn = http_client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = http_client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(self.method, self.path, body=self.body, headers=self.headers)
            response = conn.getresponse()
            payload = response.read(BODY_LIMIT)
            status = response.status
        except Exception as exc:  # every transport failure is a failed sample, never a crash
            return False, None, _error_text(exc), started
        finally:
            conn.close()
        if time.monotonic() - started > self.timeout:
            return False, status, 'timed out: response took longer than timeout %ss' % self.timeout, started
        return self._judge(status, payload) + (started,)

    def _judge(self, status, payload):
        if status not in self.expected:
            return False, status, 'status %d not in expected_status %s' % (status, self.expected)
        text = None
        if self.body_regex is not None:
            text = payload.decode('utf-8', 'replace')
            if not self.body_regex.search(text):
                return False, status, 'body does not match body_regex %r' % self.body_regex.pattern
        if self.json_parts is not None:
            try:
                document = json.loads(text if text is not None else payload.decode('utf-8', 'replace'))
            except ValueError:
                return False, status, 'body is not JSON (json_path %r)' % self.json_path
            found, value = json_path_lookup(document, self.json_parts)
            if not found:
                return False, status, 'json_path %r not found in body' % self.json_path
            if self.json_value is not None and value != self.json_value and str(value) != str(self.json_value):
                return False, status, 'json_path %r is %r, expected %r' % (self.json_path, value, self.json_value)
        return True, status, None


class TcpCheck:
    """A TCP connect to host:port per call."""

    def __init__(self, config):
        self.address = (config['host'], int(config['port']))
        self.timeout = float(config['timeout'])

    def __call__(self):
        started = time.monotonic()
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout)
        except Exception as exc:
            return False, None, _error_text(exc), started
        sock.close()
        return True, None, None, started


class CommandCheck:
    """Run an argv (no shell) per call; exit status 0 is healthy."""

    def __init__(self, config):
        self.argv = list(config['command'])
        self.timeout = float(config['timeout'])

    def __call__(self):
        started = time.monotonic()
        try:
            proc = subprocess.run(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return False, None, 'timed out after %ss' % self.timeout, started
        except OSError as exc:
            return False, None, _error_text(exc), started
        if proc.returncode != 0:
            tail = proc.stderr.decode('utf-8', 'replace').strip()[-200:]
            return False, proc.returncode, 'exit status %d%s' % (proc.returncode, (': ' + tail) if tail else ''), started
        return True, 0, None, started


def build_check(config):
    kinds = {'http': HttpCheck, 'tcp': TcpCheck, 'command': CommandCheck}
    if config.get('type') not in kinds:
        raise ProbeError('type must be one of %s, got %r' % (', '.join(sorted(kinds)), config.get('type')))
    return kinds[config['type']](config)


def default_concurrency(interval, timeout):
    """Enough workers for every request of one timeout span to be in flight, within limits."""
    return int(min(256, max(4, int(timeout / interval) + 2)))


class Sampler:
    """Fixed-timeline scheduler plus a growing worker pool; hands each sample to ``sink``.

    The load it puts on the target is bounded by construction: one request per ``interval`` at most
    (a missed slot is never made up later) and never more than ``concurrency`` requests in flight,
    since a request is only ever sent by one of at most ``concurrency`` workers, each waiting for its
    answer (or its timeout) before it takes the next slot. ``max_in_flight`` records the most seen.

    With ``skip_overdue`` a scheduler that fell more than one interval behind (the process was
    stopped or starved of CPU) jumps to the latest due slot and counts the skipped ones as
    missed, instead of firing a burst of catch-up requests at the target.
    """

    def __init__(self, check, interval, concurrency, sink, skip_overdue=True):
        self.check = check
        self.skip_overdue = skip_overdue
        self.interval = float(interval)
        self.concurrency = int(concurrency)
        self.sink = sink
        self.slots = queue.Queue()
        self.lock = threading.Lock()
        self.workers = []
        self.idle = 0
        self.scheduled = 0
        self.missed = 0
        self.late = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.mono0 = None
        self.wall0 = None

    def epoch(self, mono):
        return self.wall0 + (mono - self.mono0)

    def counters(self):
        with self.lock:
            return {'slots_scheduled': self.scheduled, 'slots_missed': self.missed, 'slots_late': self.late,
                    'in_flight': self.in_flight, 'max_in_flight': self.max_in_flight, 'workers': len(self.workers),
                    'concurrency': self.concurrency, 'interval': self.interval}

    def _work(self):
        while True:
            with self.lock:
                self.idle += 1
            item = self.slots.get()
            with self.lock:
                self.idle -= 1
            if item is None:
                return
            seq, due = item
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                ok, status, error, sent = self.check()
            except Exception as exc:  # a probe bug must cost one sample, not a worker
                ok, status, error, sent = False, None, 'probe error: %s' % _error_text(exc), time.monotonic()
            latency = (time.monotonic() - sent) * 1000.0
            with self.lock:
                self.in_flight -= 1
                if sent - due > self.interval:
                    self.late += 1
            self.sink({'seq': seq, 'scheduled': round(self.epoch(due), 6), 'sent': round(self.epoch(sent), 6),
                       'latency_ms': round(latency, 3), 'ok': ok, 'status': status, 'error': error})

    def run(self, stop, count=None, deadline=None, drain_timeout=None):
        """Sample until ``stop`` is set, ``count`` slots were scheduled or the monotonic ``deadline``."""
        self.mono0 = time.monotonic()
        self.wall0 = time.time()
        seq = 0
        while not stop.is_set():
            if count is not None and seq >= count:
                break
            due = self.mono0 + seq * self.interval
            if deadline is not None and due >= deadline:
                break
            delay = due - time.monotonic()
            if delay > 0:
                if stop.wait(delay):
                    break
            elif self.skip_overdue and -delay > self.interval:
                latest = int((time.monotonic() - self.mono0) / self.interval)
                with self.lock:
                    self.scheduled += latest - seq
                    self.missed += latest - seq
                seq = latest
                continue
            with self.lock:
                free = self.idle - self.slots.qsize()
                self.scheduled += 1
                if free <= 0 and len(self.workers) >= self.concurrency:
                    self.missed += 1
                    seq += 1
                    continue
                if free <= 0:
                    worker = threading.Thread(target=self._work, name='probe-worker-%d' % len(self.workers))
                    worker.daemon = True
                    self.workers.append(worker)
                    worker.start()
            self.slots.put((seq, due))
            seq += 1
        for dummy in self.workers:
            self.slots.put(None)
        end = time.monotonic() + (drain_timeout if drain_timeout is not None else 0)
        for worker in self.workers:
            worker.join(max(0.0, end - time.monotonic()))


def probe_load(config, counters):
    """The load the probe puts on its target, for the record next to what it measured: its request
    rate, its cap on requests in flight, and the most it actually had in flight."""
    interval = float(config['interval'])
    return {'interval_seconds': interval, 'rate_hz': round(1.0 / interval, 3),
            'concurrency': int(config['concurrency']), 'max_in_flight': counters.get('max_in_flight')}


def run_once(config, count):
    """Sample ``count`` slots in this process and return the samples (sorted by seq)."""
    samples = []
    lock = threading.Lock()

    def sink(sample):
        with lock:
            samples.append(sample)

    interval = float(config['interval'])
    # every one of the ``count`` samples is taken, even if the process was starved for a moment
    sampler = Sampler(build_check(config), interval, config.get('concurrency')
                      or default_concurrency(interval, float(config['timeout'])), sink, skip_overdue=False)
    sampler.run(threading.Event(), count=count, drain_timeout=float(config['timeout']) + 1.0)
    return sorted(samples, key=lambda s: s['seq']), sampler.counters()


def write_json_atomic(path, data):
    """The probe's config and state files: owner-only, replaced atomically."""
    _atomic.write_json_atomic(path, data, mode=0o600)


def read_json(path, what):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        raise ProbeError('cannot read %s %s: %s' % (what, path, exc))
    except ValueError as exc:
        raise ProbeError('%s %s is corrupt: %s' % (what, path, exc))


def controller_pid(pid=None):
    """The outermost ``ansible-playbook`` process among the ancestors of ``pid`` (default: this
    process), or None. Ansible's workers are forks of it, so the outermost one is the controller."""
    found = None
    pid = os.getppid() if pid is None else pid
    while pid and pid > 1:
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                argv = handle.read().split(b'\0')
        except (IOError, OSError):
            break
        parent = _proc.parent(pid)
        if parent is None:
            break
        if any(os.path.basename(arg) == b'ansible-playbook' for arg in argv[:2]):
            found = pid
        pid = parent
    return found


def run_background(config_path):
    """Entry point of the detached sampler process."""
    config = read_json(config_path, 'probe config')
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    paths = probe_paths(os.path.dirname(config_path), config['probe_id'])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    fd = os.open(paths['samples'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    write_lock = threading.Lock()

    def sink(sample):
        # one os.write of one whole line: a killed sampler never leaves half a line behind
        line = (json.dumps(sample, sort_keys=True) + '\n').encode('utf-8')
        with write_lock:
            os.write(fd, line)

    interval = float(config['interval'])
    sampler = Sampler(build_check(config), interval, config['concurrency'], sink)
    state = {'probe_id': config['probe_id'], 'pid': os.getpid(), 'started_at': time.time(),
             'max_lifetime': config['max_lifetime'], 'interval': interval, 'running': True,
             'finished_at': None, 'exit_reason': None}
    deadline = time.monotonic() + float(config['max_lifetime'])
    owner = config.get('owner_pid')
    owner_start = config.get('owner_starttime')
    ending = {'reason': None}

    def heartbeat():
        while not stop.wait(HEARTBEAT_SECONDS):
            # a sampler whose controller died (even by SIGKILL) stops with it instead of probing on
            if owner and _proc.starttime(owner) != owner_start:
                ending['reason'] = 'controller gone (pid %d)' % owner
                stop.set()
                break
            state.update(sampler.counters(), heartbeat_at=time.time())
            write_json_atomic(paths['state'], state)

    state.update(sampler.counters(), heartbeat_at=time.time())
    write_json_atomic(paths['state'], state)
    beat = threading.Thread(target=heartbeat, name='probe-heartbeat')
    beat.daemon = True
    beat.start()
    sampler.run(stop, deadline=deadline, drain_timeout=float(config['timeout']) + 0.5)
    reason = ending['reason'] or ('stopped' if stop.is_set() else 'max_lifetime reached')
    stop.set()
    beat.join()
    with write_lock:
        os.close(fd)
    state.update(sampler.counters(), heartbeat_at=time.time(), running=False, finished_at=time.time(),
                 exit_reason=reason)
    write_json_atomic(paths['state'], state)


def pid_is_sampler(pid, probe_id):
    """True when ``pid`` is alive and is the sampler of ``probe_id`` (guards against pid reuse)."""
    if not pid:
        return False
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            cmdline = handle.read()
    except (IOError, OSError):
        if os.path.isdir('/proc/self'):
            return False
    else:
        if _proc.starttime(pid) is None:  # gone meanwhile, or a zombie
            return False
        script = (probe_id + '.sampler.py').encode('utf-8')
        return any(os.path.basename(arg) == script for arg in cmdline.split(b'\0'))
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def launch(config, probe_dir, python=None, start_timeout=10.0):
    """Start a detached sampler for ``config`` in ``probe_dir``; returns the first state dict."""
    if not os.path.isdir(probe_dir):
        os.makedirs(probe_dir, 0o700)
    paths = probe_paths(probe_dir, config['probe_id'])
    if os.path.exists(paths['config']):
        raise ProbeError('probe_id %r already exists in probe_dir %s; stop it or pick another probe_id'
                         % (config['probe_id'], probe_dir))
    build_check(config)
    write_json_atomic(paths['config'], config)
    _atomic.install_program(sys.modules[__name__], os.path.basename(paths['script']), probe_dir)
    log = os.open(paths['log'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen([python or sys.executable, paths['script'], paths['config']],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=probe_dir,
                                close_fds=True, start_new_session=True)
    finally:
        os.close(log)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if os.path.exists(paths['state']):
            return read_json(paths['state'], 'probe state')
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.kill()
    with open(paths['log']) as handle:
        tail = handle.read()[-2000:]
    raise ProbeError('sampler for probe_id %r did not start (exit status %s): %s'
                     % (config['probe_id'], proc.poll(), tail.strip() or 'no output'))


def stop(probe_dir, probe_id, timeout=10.0):
    """Stop a running sampler; returns True when it was running."""
    paths = probe_paths(probe_dir, probe_id)
    state = read_json(paths['state'], 'probe state')
    pid = state.get('pid')
    if not pid_is_sampler(pid, probe_id):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_is_sampler(pid, probe_id):
            return True
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    while pid_is_sampler(pid, probe_id) and time.monotonic() < deadline + 5:
        time.sleep(0.02)
    return True


if __name__ == '__main__':
    run_background(sys.argv[1])
