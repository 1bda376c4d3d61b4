# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Starting or unpausing a container on a Docker daemon that needs TLS: a revert step.

The guard's own ``docker`` revert action speaks plain ``unix://`` and ``tcp://`` with the standard
library; a TLS daemon is reached by this program instead, through a ``command`` revert action
(``python3 magsasa_chaos_docker_tls.py SPEC_JSON``) under the module's interpreter, where the Docker
SDK for Python is importable. SPEC_JSON holds the connection options (``docker_host``,
``validate_certs``, ``ca_path``, ``client_cert``, ``client_key``, ``timeout``), ``op`` (``start`` or
``unpause``) and ``container``.

This file is copied verbatim into the fault's directory like the guard, so it must stay standalone:
Python 3.8+ standard library plus the Docker SDK (imported in ``main``), no Ansible imports.
"""

import json
import os
import sys

PROGRAM_FILENAME = 'magsasa_chaos_docker_tls.py'
OPS = ('start', 'unpause')
CA_BUNDLE_VARIABLES = ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE')


class SpecError(Exception):
    """A spec the program cannot run with."""


# ---------------------------------------------------------------- pure parts

def parse_spec(text):
    """The JSON spec, checked for what the program needs."""
    spec = json.loads(text)
    for key in ('docker_host', 'op', 'container'):
        if not spec.get(key):
            raise SpecError('the spec lacks %r' % key)
    if spec['op'] not in OPS:
        raise SpecError('op must be one of %s, got %r' % (', '.join(OPS), spec['op']))
    return spec


def tls_options(spec):
    """The keyword arguments of ``docker.tls.TLSConfig`` for the spec."""
    client_cert = (spec['client_cert'], spec['client_key']) if spec.get('client_cert') else None
    return dict(ca_cert=spec.get('ca_path'), verify=bool(spec.get('validate_certs')), client_cert=client_cert)


def pins_ca(spec):
    """Whether the spec pins a CA: then the CA bundle variables of requests must not replace it."""
    return bool(spec.get('validate_certs') and spec.get('ca_path'))


def already_done(op, message):
    """Whether an API error only says the container is already where the revert takes it."""
    return op == 'unpause' and 'not paused' in message


# ---------------------------------------------------------------- side effects

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        sys.stderr.write('usage: %s SPEC_JSON\n' % PROGRAM_FILENAME)
        return 2
    try:
        spec = parse_spec(argv[0])
    except (SpecError, ValueError) as exc:
        sys.stderr.write('%s: %s\n' % (PROGRAM_FILENAME, exc))
        return 2
    import docker
    from docker.errors import APIError
    from docker.tls import TLSConfig
    if pins_ca(spec):
        for name in CA_BUNDLE_VARIABLES:
            os.environ.pop(name, None)
    client = docker.DockerClient(base_url=spec['docker_host'], tls=TLSConfig(**tls_options(spec)),
                                 timeout=spec.get('timeout') or 60)
    container = client.containers.get(spec['container'])
    try:
        getattr(container, spec['op'])()
    except APIError as exc:
        if not already_done(spec['op'], str(exc)):
            raise
    sys.stdout.write('%s %s: ok\n' % (spec['op'], spec['container']))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
