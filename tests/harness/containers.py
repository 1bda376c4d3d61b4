"""Container hosts for fleet runs (docker connection, the local base image), shared with ``bench/``.

Each host's fault state directory is a bind mount under ``root/state/<name>``, so a test reads the
hosts' own revert history without going through the connection it measures.
"""

import os

BASE_IMAGE = os.environ.get("MAGSASA_BASE_IMAGE", "magsasa/debian-base:bookworm")
STATE_IN_HOST = "/var/lib/fleet-chaos"


def start_container_hosts(client, names, root, image=BASE_IMAGE):
    """Start one idle container host per name, its state dir bind-mounted from ``root/state/<name>``."""
    for name in names:
        state = os.path.join(str(root), "state", name)
        os.makedirs(state)
        client.containers.run(image, ["sleep", "infinity"], name=name, detach=True, init=True,
                              volumes={state: {"bind": STATE_IN_HOST, "mode": "rw"}})


def remove_container_hosts(client, names):
    """Force-remove the named containers; return the names still present afterwards (none, or a leak)."""
    for name in names:
        try:
            client.containers.get(name).remove(force=True)
        except Exception:  # docker.errors.NotFound: never started or already gone
            pass
    present = {c.name for c in client.containers.list(all=True)}
    return [name for name in names if name in present]


def inventory_hosts(names):
    """Inventory host entries for the container hosts."""
    return {name: {"ansible_connection": "community.docker.docker", "ansible_host": name,
                   "ansible_python_interpreter": "/usr/bin/python3"} for name in names}
