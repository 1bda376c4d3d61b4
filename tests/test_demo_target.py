"""End-to-end tests of the demo target in local mode: real ansible-playbook runs of
demo_up / demo_down, a real PostgreSQL from initdb/pg_ctl, the API under a real supervisord.

Each test module run uses its own state directory, so a developer's running demo is untouched.
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import psutil
import pytest

from harness import missing, play_recap, require, require_docker, require_postgres_bin_dir, run_playbook, wait_for

DEMO_JSON_KEYS = {
    "mode", "api_url", "health_url", "api_host", "api_port", "pg_host", "pg_port", "pg_data_dir",
    "pg_bin_dir", "pg_os_user", "pg_socket_dir", "db_name", "db_user", "db_password_file",
    "supervisor_config", "supervisor_socket", "supervisor_serverurl", "supervisor_program", "state_dir",
}


def http(method, url, body=None, timeout=3):
    """(status, parsed JSON body or None); connection errors give status 0."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, None


def listening(port):
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def supervisorctl(info, *args):
    return subprocess.run([require("supervisorctl"), "-c", info["supervisor_config"]] + list(args),
                          capture_output=True, text=True, timeout=30)


def api_pid(info):
    result = supervisorctl(info, "pid", info["supervisor_program"])
    return int(result.stdout) if result.stdout.strip().isdigit() and int(result.stdout) > 0 else None


def pg_ctl(info, *args):
    command = ["runuser", "-u", info["pg_os_user"], "--", os.path.join(info["pg_bin_dir"], "pg_ctl"),
               "-D", info["pg_data_dir"]] + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def postmaster_pid(info):
    with open(os.path.join(info["pg_data_dir"], "postmaster.pid")) as handle:
        return int(handle.readline())


@pytest.fixture(scope="module")
def state_dir():
    require_postgres_bin_dir()
    require("supervisord", "pip install supervisor")
    require("runuser")
    # PostgreSQL runs as the postgres user, which must reach its data dir: /tmp, not pytest's 0700 tmp.
    path = tempfile.mkdtemp(prefix="magsasa-demo-test-%s-" % uuid.uuid4().hex[:6])
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    state = os.path.join(path, "state")
    try:
        yield state
    finally:
        down = run_playbook("demo_down.yml", {"demo_target_state_dir": state, "demo_target_purge": True})
        shutil.rmtree(path, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def demo(state_dir):
    started = time.monotonic()
    up = run_playbook("demo_up.yml", {"demo_target_state_dir": state_dir})
    assert up.returncode == 0, up.stdout + up.stderr
    assert play_recap(up.stdout)["localhost"]["changed"] > 0
    with open(os.path.join(state_dir, "demo.json")) as handle:
        info = json.load(handle)
    info["up_seconds"] = time.monotonic() - started
    info["up_output"] = up.stdout
    return info


def test_demo_up_serves_the_api_and_writes_rows(demo):
    assert DEMO_JSON_KEYS <= set(demo), "demo.json lacks %s" % (DEMO_JSON_KEYS - set(demo))
    assert demo["mode"] == "local" and demo["supervisor_program"] == "demo_api"
    assert demo["health_url"] in demo["up_output"], "demo_up must print the URL"

    status, health = http("GET", demo["health_url"])
    assert status == 200 and health["database"] == "up"

    status, farmer = http("POST", demo["api_url"] + "/api/farmers",
                          {"name": "Maria Santos", "province": "Nueva Ecija", "crop": "rice", "farm_size_ha": 2.5})
    assert status == 201, farmer
    status, loan = http("POST", demo["api_url"] + "/api/loans",
                        {"farmer_id": farmer["id"], "amount": 25000, "term_months": 12, "purpose": "fertilizer"})
    assert status == 201, loan
    assert http("GET", "%s/api/farmers/%d" % (demo["api_url"], farmer["id"]))[1]["loan_count"] == 1
    assert http("GET", "%s/api/loans/%d" % (demo["api_url"], loan["id"]))[1]["amount"] == 25000
    listed = http("GET", "%s/api/loans?farmer_id=%d" % (demo["api_url"], farmer["id"]))[1]["loans"]
    assert [entry["id"] for entry in listed] == [loan["id"]]

    status, error = http("POST", demo["api_url"] + "/api/loans", {"farmer_id": farmer["id"], "amount": 5, "term_months": 99})
    assert status == 400 and "term_months" in error["error"] and "99" in error["error"]

    # The rows are in PostgreSQL itself, not only in the API's answers.
    count = subprocess.run(
        ["runuser", "-u", demo["pg_os_user"], "--", os.path.join(demo["pg_bin_dir"], "psql"), "-h", demo["pg_socket_dir"],
         "-p", str(demo["pg_port"]), "-U", "postgres", "-d", demo["db_name"], "-Atc",
         "SELECT count(*) FROM loans WHERE farmer_id = %d" % farmer["id"]],
        capture_output=True, text=True, timeout=30)
    assert count.stdout.strip() == "1", count.stderr


def test_demo_up_again_changes_nothing(demo):
    again = run_playbook("demo_up.yml", {"demo_target_state_dir": demo["state_dir"]})
    assert again.returncode == 0, again.stdout + again.stderr
    assert play_recap(again.stdout)["localhost"]["changed"] == 0, again.stdout


def test_killed_api_is_restarted_by_supervisord(demo):
    old_pid = api_pid(demo)
    assert old_pid and psutil.pid_exists(old_pid)
    os.kill(old_pid, signal.SIGKILL)
    new_pid = wait_for(lambda: (api_pid(demo) or old_pid) != old_pid and api_pid(demo), timeout=15)
    assert new_pid and new_pid != old_pid, "supervisord did not restart the API"
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    assert wait_for(lambda: http("GET", demo["health_url"])[0] == 200, timeout=15)
    assert http("GET", demo["api_url"] + "/api/farmers")[0] == 200


def test_database_downtime_fails_health_then_recovers_by_itself(demo):
    status, farmer = http("POST", demo["api_url"] + "/api/farmers", {"name": "Pedro Reyes", "crop": "corn"})
    assert status == 201
    pid_before = api_pid(demo)

    stop = pg_ctl(demo, "stop", "-m", "fast", "-w")
    try:
        assert stop.returncode == 0, stop.stderr
        down_samples = []
        until = time.monotonic() + 5
        while time.monotonic() < until:
            down_samples.append(http("GET", demo["health_url"]))
            time.sleep(0.25)
    finally:
        start = pg_ctl(demo, "start", "-w", "-t", "60", "-l", os.path.join(os.path.dirname(demo["pg_data_dir"]), "postgresql.log"))
        assert start.returncode == 0, start.stdout + start.stderr

    assert down_samples and all(code == 503 for code, _body in down_samples), down_samples
    assert all(body["status"] == "unavailable" and body["reason"] for _code, body in down_samples)

    recovered = wait_for(lambda: http("GET", demo["health_url"])[0] == 200, timeout=15)
    assert recovered, "the API did not recover after PostgreSQL came back"
    assert api_pid(demo) == pid_before, "recovery must not need an API restart"
    assert http("GET", demo["health_url"])[1]["reconnects"] >= 1, "the pool must have reconnected"
    status, again = http("GET", "%s/api/farmers/%d" % (demo["api_url"], farmer["id"]))
    assert status == 200 and again["name"] == "Pedro Reyes"


@pytest.mark.parametrize("bad, expected", [
    ({"demo_target_mode": "kubernetes"}, ["demo_target_mode", "kubernetes"]),
    ({"demo_target_pg_bin_dir": "/nonexistent/pg/bin"}, ["PostgreSQL server binaries not found", "/nonexistent/pg/bin"]),
])
def test_bad_input_is_refused_naming_the_field(state_dir, bad, expected):
    other = state_dir + "-bad"
    try:
        result = run_playbook("demo_up.yml", dict(bad, demo_target_state_dir=other))
        assert result.returncode != 0
        for text in expected:
            assert text in result.stdout, result.stdout
        assert not os.path.exists(os.path.join(other, "postgres")), "nothing may be started on bad input"
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_busy_port_is_refused_before_anything_starts(state_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        other = state_dir + "-busy"
        result = run_playbook("demo_up.yml", {"demo_target_state_dir": other, "demo_target_api_port": port})
    try:
        assert result.returncode != 0
        assert "port %d" % port in result.stdout and "in use" in result.stdout
        assert not os.path.exists(os.path.join(other, "postgres", "data", "postmaster.pid"))
        assert not os.path.exists(os.path.join(other, "supervisor", "supervisord.pid"))
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_demo_down_leaves_nothing_behind(demo):
    pids = [api_pid(demo), postmaster_pid(demo), int(supervisorctl(demo, "pid").stdout)]
    assert all(pids)
    down = run_playbook("demo_down.yml", {"demo_target_state_dir": demo["state_dir"]})
    assert down.returncode == 0, down.stdout + down.stderr
    assert play_recap(down.stdout)["localhost"]["changed"] > 0

    alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, "processes left running: %s" % alive
    assert not listening(demo["api_port"]) and not listening(demo["pg_port"])
    assert not os.path.exists(os.path.join(demo["pg_data_dir"], "postmaster.pid"))
    assert not [n for n in os.listdir(demo["pg_socket_dir"]) if n.startswith(".s.PGSQL")]
    assert not os.path.exists(demo["supervisor_socket"])
    assert not os.path.exists(demo["info_file"])

    again = run_playbook("demo_down.yml", {"demo_target_state_dir": demo["state_dir"]})
    assert again.returncode == 0 and play_recap(again.stdout)["localhost"]["changed"] == 0, again.stdout


BASE_IMAGE = "magsasa/debian-base:bookworm"


@pytest.fixture(scope="module")
def container_demo():
    client = require_docker()
    if not client.images.list(name=BASE_IMAGE):
        missing("the local base image %s is missing (scripts/build-base-image.sh builds it)" % BASE_IMAGE)
    path = tempfile.mkdtemp(prefix="magsasa-demo-ctest-")
    prefix = "magsasa-demo-test-%s" % uuid.uuid4().hex[:8]
    extra = {"demo_target_mode": "container", "demo_target_state_dir": path, "demo_target_name_prefix": prefix,
             "demo_target_base_image": BASE_IMAGE}
    try:
        up = run_playbook("demo_up.yml", extra)
        assert up.returncode == 0, up.stdout + up.stderr
        with open(os.path.join(path, "demo.json")) as handle:
            info = json.load(handle)
        yield client, info, extra
    finally:
        down = run_playbook("demo_down.yml", dict(extra, demo_target_purge=True))
        shutil.rmtree(path, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr
        leftovers = client.containers.list(all=True, filters={"name": prefix})
        assert not leftovers, "containers left behind: %s" % [c.name for c in leftovers]
        assert not client.networks.list(names=[prefix + "-net"])
        assert not [v for v in client.volumes.list() if v.name.startswith(prefix)]


def test_container_demo_survives_crash_and_database_downtime(container_demo):
    client, info, extra = container_demo
    api = client.containers.get(info["api_container"])
    db = client.containers.get(info["db_container"])
    assert api.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert api.attrs["Config"]["User"] not in ("", "0", "root") and "ALL" in api.attrs["HostConfig"]["CapDrop"]
    assert api.attrs["Config"]["Healthcheck"]["Test"], "the API image must carry a HEALTHCHECK"

    status, health = http("GET", info["health_url"])
    assert status == 200 and health["driver"] == "psycopg2"
    status, farmer = http("POST", info["api_url"] + "/api/farmers", {"name": "Lito Garcia", "crop": "coconut"})
    assert status == 201

    # A crash: SIGKILL the main process from the host, so the restart policy acts.
    restarts = api.attrs["RestartCount"]
    os.kill(api.attrs["State"]["Pid"], signal.SIGKILL)
    assert wait_for(lambda: (api.reload() or api.attrs["RestartCount"]) == restarts + 1, timeout=20)
    assert wait_for(lambda: http("GET", info["health_url"])[0] == 200, timeout=20)

    db.stop(timeout=10)
    try:
        status, body = http("GET", info["health_url"])
        assert status == 503 and body["status"] == "unavailable", body
    finally:
        db.start()
    assert wait_for(lambda: http("GET", info["health_url"])[0] == 200, timeout=30)
    status, again = http("GET", "%s/api/farmers/%d" % (info["api_url"], farmer["id"]))
    assert status == 200 and again["name"] == "Lito Garcia"

    second = run_playbook("demo_up.yml", extra)
    assert second.returncode == 0 and play_recap(second.stdout)["localhost"]["changed"] == 0, second.stdout
