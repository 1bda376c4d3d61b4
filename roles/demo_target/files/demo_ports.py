#!/usr/bin/env python3
"""Choose and persist the TCP ports of the demo target.

Usage: demo_ports.py STATE_FILE HOST NAME=REQUESTED:RUNNING [NAME=REQUESTED:RUNNING ...]

REQUESTED is a fixed port or 0 for "choose one". RUNNING is 1 when the service that owns
the port is up now (its persisted port is then kept, busy or not). A persisted port is
reused while it is free, so later runs and demo_down find the same ports; a busy one is
replaced. Prints JSON {"changed": bool, "ports": {NAME: PORT}}; exits 1 with a message
naming the port when a requested port is taken by something else.
"""

import json
import os
import socket
import sys


def port_is_free(host, port):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the API and PostgreSQL do: connections of a previous run lingering in TIME_WAIT
    # must not make their own port look taken.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def free_port(host, taken):
    while True:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        finally:
            probe.close()
        if port not in taken:
            return port


def main(argv):
    state_file, host, specs = argv[1], argv[2], argv[3:]
    try:
        with open(state_file) as handle:
            persisted = json.load(handle)
    except (OSError, ValueError):
        persisted = {}
    ports = {}
    for spec in specs:
        name, _sep, rest = spec.partition("=")
        requested, _sep, running = rest.partition(":")
        requested, running = int(requested), running == "1"
        previous = persisted.get(name)
        if requested:
            if not running and not port_is_free(host, requested):
                sys.stderr.write("port %d on %s requested for %s is in use by another process\n" % (requested, host, name))
                return 1
            ports[name] = requested
        elif previous and (running or port_is_free(host, previous)):
            ports[name] = previous
        else:
            ports[name] = free_port(host, set(ports.values()))
    changed = any(persisted.get(name) != port for name, port in ports.items())
    if changed:
        merged = dict(persisted, **ports)
        tmp = state_file + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(merged, handle, indent=2, sort_keys=True)
        os.rename(tmp, state_file)
    sys.stdout.write(json.dumps({"changed": changed, "ports": ports}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
