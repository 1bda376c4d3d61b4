# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):

    # The Docker Engine API connection (module_utils/_containers.py), named as community.docker names it.
    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - The Docker API to talk to, as a URL. V(unix:///var/run/docker.sock) for the local daemon,
        V(tcp://host:2376) for a remote one, or the Docker-compatible API socket of Podman, for example
        V(unix:///run/podman/podman.sock).
      - When not given in the task, the environment variable E(DOCKER_HOST) is used, then the default.
    type: str
    default: unix:///var/run/docker.sock
  tls:
    description:
      - Talk TLS to the daemon without verifying its certificate (O(validate_certs) takes precedence).
      - When not given in the task, the environment variable E(DOCKER_TLS) is used, then the default.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk TLS to the daemon and verify its certificate against O(ca_path).
      - When not given in the task, the environment variable E(DOCKER_TLS_VERIFY) is used, then the default.
    type: bool
    default: false
  ca_path:
    description:
      - The CA certificate that signed the daemon's certificate, for O(validate_certs).
    type: path
  client_cert:
    description:
      - The client certificate presented to the daemon. Requires O(client_key).
    type: path
  client_key:
    description:
      - The key of O(client_cert).
    type: path
  timeout:
    description:
      - Seconds to wait for an answer of the Docker API.
      - When not given in the task, the environment variable E(DOCKER_TIMEOUT) is used, then the default.
    type: int
    default: 60
requirements:
  - Docker SDK for Python (C(docker)) on the host the module runs on
notes:
  - The guard that reverts a fault at its deadline talks to a plain V(unix://) or V(tcp://) O(docker_host)
    with the Python standard library. With O(tls) or O(validate_certs) it runs the Docker SDK under the
    module's interpreter instead, so the certificate files must still be readable at the deadline.
'''
