# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Docker Engine API access shared by the container and database fault modules.

One common argument spec (option names as community.docker uses them, documented once in
``doc_fragments/docker.py``), one way to build a client, and the guard revert actions that
start or unpause a container again. Podman is reached through its Docker-compatible API socket
given as ``docker_host`` (for example ``unix:///run/podman/podman.sock``).
"""

import calendar
import json
import os
import sys
import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible_collections.magsasa.chaos.plugins.module_utils import _docker_tls

try:
    import docker
    from docker.errors import DockerException, NotFound
    from docker.tls import TLSConfig
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):
        pass

    class NotFound(DockerException):
        pass

DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'
CA_BUNDLE_VARIABLES = _docker_tls.CA_BUNDLE_VARIABLES
DOCKER_OPTIONS = ('docker_host', 'tls', 'validate_certs', 'ca_path', 'client_cert', 'client_key', 'timeout')


def docker_argument_spec():
    """The connection options every Docker-using module merges into its argument spec."""
    return dict(
        docker_host=dict(type='str', default=DEFAULT_DOCKER_HOST, fallback=(env_fallback, ['DOCKER_HOST'])),
        tls=dict(type='bool', default=False, fallback=(env_fallback, ['DOCKER_TLS'])),
        validate_certs=dict(type='bool', default=False, fallback=(env_fallback, ['DOCKER_TLS_VERIFY'])),
        ca_path=dict(type='path'),
        client_cert=dict(type='path'),
        client_key=dict(type='path'),
        timeout=dict(type='int', default=60, fallback=(env_fallback, ['DOCKER_TIMEOUT'])),
    )


def docker_required_together():
    return [('client_cert', 'client_key')]


class ContainerError(Exception):
    """A failure with a message meant for the user."""


def uses_tls(params):
    return bool(params.get('tls') or params.get('validate_certs'))


def connection_spec(params):
    """The connection options as plain data (what a revert action needs to reconnect)."""
    return dict((name, params.get(name)) for name in DOCKER_OPTIONS)


def docker_client(module):
    """A connected ``docker.DockerClient``; fails the module with a clear message otherwise."""
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib('docker (the Docker SDK for Python)'), exception=DOCKER_IMPORT_ERROR)
    params = module.params
    try:
        return connect(params)
    except ContainerError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())


def connect(params):
    host = params.get('docker_host') or DEFAULT_DOCKER_HOST
    kwargs = dict(base_url=host, timeout=params.get('timeout') or 60)
    if uses_tls(params):
        client_cert = None
        if params.get('client_cert'):
            client_cert = (params['client_cert'], params['client_key'])
        kwargs['tls'] = TLSConfig(ca_cert=params.get('ca_path'), verify=bool(params.get('validate_certs')),
                                  client_cert=client_cert)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA given to it (and the client
    # already talks to the daemon while it is built), so with ca_path they are hidden meanwhile.
    pinned_ca = bool(params.get('validate_certs') and params.get('ca_path'))
    hidden = dict((name, os.environ.pop(name)) for name in CA_BUNDLE_VARIABLES if pinned_ca and name in os.environ)
    try:
        client = docker.DockerClient(**kwargs)
        if pinned_ca:
            client.api.trust_env = False
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        raise ContainerError('cannot reach the Docker daemon at docker_host=%s: %s. Check that dockerd (or the '
                             'Podman API service) is running and that docker_host points at its socket or '
                             'TCP address.' % (host, exc))
    finally:
        os.environ.update(hidden)
    return client


def revert_action(params, op, container_id, install):
    """The guard action that starts or unpauses ``container_id`` again.

    Plain ``unix://`` and ``tcp://`` daemons use the guard's stdlib ``docker`` action. A TLS daemon
    is reached by a ``command`` action that runs the program :mod:`_docker_tls` (the Docker SDK)
    under this module's interpreter; ``install(program_module, filename)`` copies it where the
    revert runs it (the fault's directory) and returns its path.
    """
    if not uses_tls(params):
        return dict(type='docker', op=op, container=container_id, docker_host=params.get('docker_host') or DEFAULT_DOCKER_HOST)
    spec = connection_spec(params)
    spec.update(op=op, container=container_id)
    program = install(_docker_tls, _docker_tls.PROGRAM_FILENAME)
    return dict(type='command', argv=[sys.executable, program, json.dumps(spec, sort_keys=True)],
                timeout=max(30, int(params.get('timeout') or 60)))


def container_state(client, container_id):
    """``docker inspect`` of the container, or None when it no longer exists."""
    try:
        return client.api.inspect_container(container_id)
    except NotFound:
        return None


def is_up(info):
    """Running, not paused, and healthy when the container has a healthcheck."""
    if not info:
        return False
    state = info.get('State') or {}
    if not state.get('Running') or state.get('Paused') or state.get('Restarting'):
        return False
    health = health_status(info)
    return not health or health == 'healthy'


def health_status(info):
    """The healthcheck status, or None without a healthcheck (Podman reports an empty one then)."""
    status = ((info.get('State') or {}).get('Health') or {}).get('Status')
    return status if status and status != 'none' else None


def event_action(event):
    """A container event's action (``start``, ``die``, ``health_status: healthy``), old or new API."""
    return event.get('Action') or event.get('status') or ''


def recovery_from_events(events, healthcheck, clock=None):
    """The moment the container was back, from its runtime events in order: when ``start`` came (and,
    with a healthcheck, ``health_status: healthy`` after it), read from ``clock`` as each event
    arrives. None when the events end first. Returns ``(recovered_at, died)``."""
    clock = clock or time.time
    started = False
    died = False
    for event in events:
        action = event_action(event)
        if action in ('die', 'kill', 'oom'):
            died = died or action != 'kill'
            started = False
        elif action == 'start':
            started = True
            if not healthcheck:
                return clock(), died
        elif action.startswith('health_status') and action.endswith(' healthy') and started:
            return clock(), died
    return None, died


def watch_recovery(client, container_id, since, until, healthcheck):
    """Wait, passively, for the container to come back: a stream of the runtime's own events
    (``GET /events`` filtered to the container, from ``since``, which replays what already happened,
    to ``until``). Returns ``(recovered_at, died)`` as :func:`recovery_from_events`.

    Why not poll ``inspect``: the daemon pushes these events to every subscriber the same way, so
    listening sends it nothing per check and takes no lock on the container, and the restart
    policy's backoff timer runs exactly as it would without us."""
    stream = client.api.events(since='%.6f' % since, until='%.6f' % until, decode=True,
                               filters={'container': container_id, 'type': 'container'})
    try:
        return recovery_from_events(stream, healthcheck)
    finally:
        stream.close()


def parse_docker_time(value):
    """Docker's RFC 3339 time with nanoseconds (``2026-11-29T18:38:47.325992509Z``) as epoch seconds."""
    if not value or value.startswith('0001-01-01'):
        return 0.0
    main, rest = value.split('.', 1) if '.' in value else (value, '')
    fraction = 0.0
    if rest:
        digits = ''
        for char in rest:
            if not char.isdigit():
                break
            digits += char
        fraction = float('0.' + digits) if digits else 0.0
        zone = rest[len(digits):]
    else:
        zone = main[19:]
        main = main[:19]
    seconds = calendar.timegm(time.strptime(main[:19], '%Y-%m-%dT%H:%M:%S'))
    if zone and zone not in ('Z', 'z'):
        sign = 1 if zone[0] == '+' else -1
        hours, minutes = (zone[1:].split(':', 1) + ['0'])[:2]
        seconds -= sign * (int(hours) * 3600 + int(minutes or 0) * 60)
    return seconds + fraction


def pid_belongs_to(pid, container_id):
    """Whether host process ``pid`` runs in the container (its cgroup path names the container id)."""
    try:
        with open('/proc/%d/cgroup' % int(pid), 'r') as handle:
            return container_id in handle.read()
    except (IOError, OSError):
        return False
