"""Real parts for the container and database fault tests: a local busybox image, throwaway
PostgreSQL and MariaDB servers in temporary data dirs, and ways to run the modules (directly and
through real ``ansible-playbook`` runs). Nothing here mocks anything.

Under ``CI=true`` a missing Docker / PostgreSQL / MariaDB fails the test instead of skipping it.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid


from harness import (  # noqa: F401 (run_module: the tests use it from here)
    REPO_ROOT, free_port, missing, require, require_docker, run_module, run_play, wait_for)
from harness.faults import wait_history

ROOT = str(REPO_ROOT)
BUSYBOX_IMAGE = 'magsasa-test/busybox:latest'
# The newest PostgreSQL server on this machine (15 on Debian 12, 16 on GitHub's ubuntu-24.04).
PG_BIN = (sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=lambda p: int(p.split('/')[-2]) if p.split('/')[-2].isdigit() else 0)
          or ['/usr/lib/postgresql/15/bin'])[-1]
MARIADBD = '/usr/sbin/mariadbd'
DB_PASSWORD = 'chaos-Secret-42'


def unique(prefix):
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


def run_playbook(directory, tasks, timeout=180):
    """Run the tasks (YAML text) on localhost; the CompletedProcess, output as a user sees it."""
    return run_play(directory, tasks, timeout=timeout)


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def history(state_dir, fault_id, timeout=15):
    """The revert history entry of a fault, once the guard (or a module) has written it: the effect of a
    revert shows in the world a moment before its history entry is written."""
    return wait_history(state_dir, fault_id, timeout)


# ---------------------------------------------------------------- docker

def docker(*args, check=True):
    return subprocess.run(['docker'] + list(args), capture_output=True, text=True, check=check, timeout=60)


def require_dockerd():
    """The docker CLI and a reachable dockerd (the tests drive both)."""
    require('docker', 'apt-get install docker.io')
    require_docker()


def ensure_busybox_image():
    """Build the tiny test image from the busybox-static binary (once; kept between runs)."""
    if docker('image', 'inspect', BUSYBOX_IMAGE, check=False).returncode == 0:
        return BUSYBOX_IMAGE
    root = tempfile.mkdtemp(prefix='magsasa-busybox-')
    try:
        os.makedirs(os.path.join(root, 'bin'))
        os.makedirs(os.path.join(root, 'www'))
        shutil.copy2('/bin/busybox', os.path.join(root, 'bin', 'busybox'))
        for applet in ('sh', 'sleep', 'httpd', 'nc', 'wget', 'cat', 'echo', 'true', 'kill', 'ls'):
            os.symlink('busybox', os.path.join(root, 'bin', applet))
        with open(os.path.join(root, 'www', 'index.html'), 'w') as handle:
            handle.write('busybox says hello\n')
        tar = subprocess.Popen(['tar', '-C', root, '-c', '.'], stdout=subprocess.PIPE)
        subprocess.run(['docker', 'import', '-', BUSYBOX_IMAGE], stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
    finally:
        shutil.rmtree(root)
    return BUSYBOX_IMAGE


def run_httpd_container(name, restart='no', healthcheck=True, labels=None):
    """A busybox httpd on port 8080 inside a container; returns its id."""
    args = ['run', '-d', '--name', name, '--restart', restart, '--cap-drop', 'ALL',
            '--cap-add', 'NET_BIND_SERVICE', '--cap-add', 'SETUID', '--cap-add', 'SETGID']
    if healthcheck:
        args += ['--health-cmd', 'wget -q -O /dev/null http://127.0.0.1:8080/', '--health-interval', '1s',
                 '--health-timeout', '1s', '--health-retries', '2']
    for key, value in (labels or {}).items():
        args += ['--label', '%s=%s' % (key, value)]
    args += [BUSYBOX_IMAGE, '/bin/httpd', '-f', '-p', '8080', '-h', '/www']
    return docker(*args).stdout.strip()


def inspect(name):
    return json.loads(docker('inspect', name).stdout)[0]


def http_get(ip, port=8080, timeout=1.0):
    """The body busybox httpd serves, or None when it does not answer."""
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError:
        return None
    try:
        sock.sendall(b'GET / HTTP/1.0\r\nHost: test\r\n\r\n')
        data = b''
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        sock.close()
    return data.decode('utf-8', 'replace')


def parse_docker_time(value):
    from ansible_collections.magsasa.chaos.plugins.module_utils._containers import parse_docker_time as parse
    return parse(value)


def leftover_containers(names, status):
    out = docker('ps', '-a', '--filter', 'status=%s' % status, '--format', '{{.Names}}').stdout.split()
    return [n for n in out if n in names]


def remove_containers(names):
    """Remove the test's containers and assert none was left stopped or paused before that."""
    problems = dict((status, leftover_containers(names, status)) for status in ('exited', 'paused'))
    for name in names:
        docker('rm', '-f', name, check=False)
    return problems


class PodmanService(object):
    """``podman system service`` on a socket of our own, configured for a machine without systemd
    (runc, cgroupfs, file events, ulimits no higher than ours); the busybox image imported into it."""

    def __init__(self, base):
        self.base = base
        self.socket = os.path.join(base, 'podman.sock')
        self.url = 'unix://' + self.socket
        self.conf = os.path.join(base, 'containers.conf')
        self.proc = None

    def env(self):
        result = dict(os.environ)
        result['CONTAINERS_CONF'] = self.conf
        return result

    def podman(self, *args, check=True):
        return subprocess.run(['podman'] + list(args), capture_output=True, text=True, check=check, timeout=60,
                              env=self.env())

    def start(self):
        # Podman's default ulimits are above what this machine lets a container set.
        with open(self.conf, 'w') as handle:
            handle.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                         '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        log = open(os.path.join(self.base, 'service.log'), 'w')
        self.proc = subprocess.Popen(['podman', 'system', 'service', '--time=0', self.url], env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        assert wait_for(lambda: os.path.exists(self.socket), 30), open(os.path.join(self.base, 'service.log')).read()
        if self.podman('image', 'exists', 'localhost/' + BUSYBOX_IMAGE, check=False).returncode != 0:
            docker_save = subprocess.Popen(['docker', 'save', BUSYBOX_IMAGE], stdout=subprocess.PIPE)
            subprocess.run(['podman', 'load'], stdin=docker_save.stdout, check=True, capture_output=True, env=self.env())
            docker_save.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def run_httpd(self, name, restart='no'):
        return self.podman('run', '-d', '--name', name, '--restart', restart, '--cap-drop', 'ALL',
                           '--cap-add', 'NET_BIND_SERVICE', BUSYBOX_IMAGE, '/bin/httpd', '-f', '-p', '8080',
                           '-h', '/www').stdout.strip()

    def inspect(self, name):
        return json.loads(self.podman('inspect', name).stdout)[0]

    def remove(self, names):
        problems = {}
        for status in ('exited', 'paused'):
            out = self.podman('ps', '-a', '--filter', 'status=%s' % status, '--format', '{{.Names}}').stdout.split()
            problems[status] = [n for n in out if n in names]
        for name in names:
            self.podman('rm', '-f', '-t', '0', name, check=False)
        return problems


class DockerTlsProxy(object):
    """A TLS endpoint with client-certificate authentication in front of the local Docker socket,
    on a free port on 127.0.0.1, with its own throwaway CA: a real TLS docker_host for tests."""

    def __init__(self, base):
        self.base = base
        self.port = free_port()
        self.url = 'tcp://127.0.0.1:%d' % self.port
        self.stop_event = None
        self.listener = None

    def path(self, name):
        return os.path.join(self.base, name)

    def make_certs(self):
        def openssl(*args):
            subprocess.run(['openssl'] + list(args), check=True, capture_output=True, cwd=self.base)
        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1',
                '-subj', '/CN=magsasa-test-ca')
        for name, usage in (('server', 'serverAuth'), ('client', 'clientAuth')):
            with open(self.path(name + '.ext'), 'w') as handle:
                handle.write('subjectAltName=IP:127.0.0.1\nextendedKeyUsage=%s\n' % usage)
            openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', name + '.key', '-out', name + '.csr',
                    '-subj', '/CN=127.0.0.1')
            openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
                    '-out', name + '.pem', '-days', '1', '-extfile', name + '.ext')

    def start(self):
        import ssl
        import threading
        self.make_certs()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.path('server.pem'), self.path('server.key'))
        context.load_verify_locations(self.path('ca.pem'))
        context.verify_mode = ssl.CERT_REQUIRED
        self.stop_event = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)

        def pump(source, target):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def serve(raw):
            try:
                client = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect('/var/run/docker.sock')
            back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            back.start()
            pump(client, upstream)
            back.join(30)
            client.close()
            upstream.close()

        def accept_loop():
            while not self.stop_event.is_set():
                try:
                    raw, _ = self.listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                threading.Thread(target=serve, args=(raw,), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        return self

    def stop(self):
        if self.stop_event is not None:
            self.stop_event.set()
            self.listener.close()

    def module_args(self):
        return dict(docker_host=self.url, validate_certs=True, ca_path=self.path('ca.pem'),
                    client_cert=self.path('client.pem'), client_key=self.path('client.key'))


# ---------------------------------------------------------------- database servers

def processes_in(directory):
    """Live processes whose working directory is inside ``directory`` (database servers chdir into theirs)."""
    found = []
    real = os.path.realpath(directory)
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink('/proc/%s/cwd' % name)
            with open('/proc/%s/stat' % name) as handle:
                state = handle.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if state != 'Z' and (cwd == real or cwd.startswith(real + '/')):
            found.append(int(name))
    return found


def kill_all_in(directory):
    for _ in range(50):
        pids = processes_in(directory)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)


class DbServer(object):
    """A database server of our own in a temporary directory, on a free port on 127.0.0.1."""

    engine = None
    user = None

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix='magsasa-%s-' % self.engine)
        os.chmod(self.base, 0o755)
        account = pwd.getpwnam(self.user)
        os.chown(self.base, account.pw_uid, account.pw_gid)
        self.data_dir = os.path.join(self.base, 'data')
        self.port = free_port()

    def as_user(self, argv, **kwargs):
        return subprocess.run(['runuser', '-u', self.user, '--'] + argv, capture_output=True, text=True,
                               timeout=120, **kwargs)

    def wait_ready(self, timeout=30):
        assert wait_for(lambda: self.query_ok(), timeout, 0.2), '%s did not come up; log: %s' % (self.engine, self.log_tail())

    def query_ok(self):
        try:
            self.scalar('SELECT 1')
            return True
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False

    def log_tail(self):
        return ''

    def module_args(self, **extra):
        args = dict(engine=self.engine, control='datadir', data_dir=self.data_dir, login_host='127.0.0.1',
                    login_port=self.port, login_user='chaos', login_password=DB_PASSWORD, login_db='chaosdb')
        args.update(extra)
        return args

    def destroy(self):
        """Stop the server the hard way, remove its directory; returns the pids that had to be killed."""
        left = processes_in(self.base)
        kill_all_in(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        return left


class PostgresServer(DbServer):
    engine = 'postgresql'
    user = 'postgres'

    def start(self):
        pwfile = os.path.join(self.base, 'pw')
        with open(pwfile, 'w') as handle:
            handle.write(DB_PASSWORD + '\n')
        os.chmod(pwfile, 0o644)
        init = self.as_user([os.path.join(PG_BIN, 'initdb'), '-D', self.data_dir, '-U', 'postgres', '--pwfile', pwfile,
                             '-A', 'scram-sha-256', '--auth-local=trust', '--no-sync'])
        assert init.returncode == 0, init.stdout + init.stderr
        self.launch()
        admin = self.as_user([os.path.join(PG_BIN, 'psql'), '-h', self.base, '-p', str(self.port), '-U', 'postgres',
                              '-v', 'ON_ERROR_STOP=1', '-c', "CREATE ROLE chaos LOGIN SUPERUSER PASSWORD '%s'" % DB_PASSWORD,
                              '-c', 'CREATE DATABASE chaosdb OWNER chaos'])
        assert admin.returncode == 0, admin.stdout + admin.stderr
        self.execute('CREATE TABLE writes (id integer PRIMARY KEY, at double precision NOT NULL)')
        return self

    def server_options(self):
        return ['-p', str(self.port), '-k', self.base, '-c', 'listen_addresses=127.0.0.1', '-c', 'shared_buffers=16MB',
                '-c', 'max_connections=30']

    def launch(self):
        started = self.as_user([os.path.join(PG_BIN, 'pg_ctl'), 'start', '-D', self.data_dir, '-w', '-t', '60',
                                '-l', os.path.join(self.base, 'server.log'), '-o', ' '.join(self.server_options())])
        assert started.returncode == 0, started.stdout + started.stderr + self.log_tail()

    def connect(self, timeout=1):
        import psycopg
        return psycopg.connect(host='127.0.0.1', port=self.port, user='chaos', password=DB_PASSWORD,
                               dbname='chaosdb', connect_timeout=timeout, autocommit=True)

    def execute(self, sql, params=None):
        with self.connect() as db:
            db.execute(sql, params)

    def scalar(self, sql, params=None):
        with self.connect() as db:
            return db.execute(sql, params).fetchone()[0]

    def ids(self):
        with self.connect(timeout=5) as db:
            return set(row[0] for row in db.execute('SELECT id FROM writes').fetchall())

    def main_pid(self):
        with open(os.path.join(self.data_dir, 'postmaster.pid')) as handle:
            return int(handle.readline())

    def log_tail(self):
        path = os.path.join(self.base, 'server.log')
        return open(path).read()[-1500:] if os.path.exists(path) else ''


class MariaServer(DbServer):
    engine = 'mysql'
    user = 'mysql'

    def start(self):
        install = subprocess.run(['mariadb-install-db', '--no-defaults', '--user=mysql', '--datadir=%s' % self.data_dir,
                                  '--auth-root-authentication-method=socket', '--skip-test-db'],
                                 capture_output=True, text=True, timeout=180)
        assert install.returncode == 0, install.stdout + install.stderr
        self.socket = os.path.join(self.base, 'mysqld.sock')
        argv = [MARIADBD, '--no-defaults', '--datadir=%s' % self.data_dir, '--port=%d' % self.port,
                '--bind-address=127.0.0.1', '--socket=%s' % self.socket, '--skip-name-resolve',
                '--pid-file=%s' % os.path.join(self.base, 'mariadb.pid'), '--innodb-buffer-pool-size=16M', '--max-connections=30',
                '--log-error=%s' % os.path.join(self.base, 'error.log'), '--tmpdir=%s' % self.base]
        self.launch(argv)
        assert wait_for(lambda: self.root_sql('SELECT 1').returncode == 0, 60, 0.2), self.log_tail()
        setup = self.root_sql("CREATE USER 'chaos'@'127.0.0.1' IDENTIFIED BY '%s'; "
                              "GRANT ALL ON *.* TO 'chaos'@'127.0.0.1'; CREATE DATABASE chaosdb; "
                              "CREATE TABLE chaosdb.writes (id INT PRIMARY KEY, at DOUBLE NOT NULL) ENGINE=InnoDB" % DB_PASSWORD)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        return self

    def launch(self, argv):
        subprocess.Popen(['runuser', '-u', 'mysql', '--'] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)

    def root_sql(self, sql):
        return subprocess.run(['mariadb', '--no-defaults', '-uroot', '--socket=%s' % self.socket, '-e', sql],
                              capture_output=True, text=True, timeout=30)

    def connect(self, timeout=1):
        import pymysql
        return pymysql.connect(host='127.0.0.1', port=self.port, user='chaos', password=DB_PASSWORD, database='chaosdb',
                               connect_timeout=timeout, read_timeout=timeout + 2, write_timeout=timeout + 2, autocommit=True)

    def execute(self, sql, params=None):
        db = self.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
        finally:
            db.close()

    def scalar(self, sql, params=None):
        db = self.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()[0]
        finally:
            db.close()

    def ids(self):
        db = self.connect(timeout=5)
        try:
            with db.cursor() as cursor:
                cursor.execute('SELECT id FROM writes')
                return set(row[0] for row in cursor.fetchall())
        finally:
            db.close()

    def main_pid(self):
        with open(os.path.join(self.base, 'mariadb.pid')) as handle:
            return int(handle.readline())

    def log_tail(self):
        path = os.path.join(self.base, 'error.log')
        return open(path).read()[-1500:] if os.path.exists(path) else ''


def require_postgres():
    if not (os.path.exists(os.path.join(PG_BIN, 'pg_ctl')) and _has_user('postgres') and os.geteuid() == 0):
        missing('PostgreSQL 15 (postgresql package) and root is missing')


def require_mariadb():
    if not (os.path.exists(MARIADBD) and shutil.which('mariadb-install-db') is not None and _has_user('mysql')
            and os.geteuid() == 0):
        missing('MariaDB (mariadb-server package) and root is missing')


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Writer(object):
    """A client that inserts one row every ``interval`` seconds on a fresh connection and keeps the
    outcome of every attempt: (time, id, ok). What committed before the fault must be there after it."""

    def __init__(self, server, interval=0.05):
        import threading
        self.server = server
        self.interval = interval
        self.attempts = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        next_id = 1
        while not self.stop.is_set():
            at = time.time()
            try:
                self.server.execute('INSERT INTO writes (id, at) VALUES (%s, %s)', (next_id, at))
                self.attempts.append((at, next_id, True))
            except Exception:  # noqa: BLE001 - a failed write is what we measure
                self.attempts.append((at, next_id, False))
            next_id += 1
            self.stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(10)
        return False

    def committed(self):
        return set(i for _, i, ok in self.attempts if ok)

    def failures_between(self, start, end):
        return [a for a in self.attempts if not a[2] and start <= a[0] <= end]

    def successes_after(self, when):
        return [a for a in self.attempts if a[2] and a[0] >= when]


class HostBinariesContainer(object):
    """Runs a server binary of this host in a container of the busybox image: /usr bind-mounted
    read-only, the host network, the test's directory at the same path, as the server's user."""

    def run_container(self, name, user, argv):
        account = pwd.getpwnam(user)
        docker('run', '-d', '--name', name, '--user', '%d:%d' % (account.pw_uid, account.pw_gid),
               '--network', 'host', '--cap-drop', 'ALL', '-v', '/usr:/usr:ro', '-v', '/usr/lib:/lib:ro',
               '-v', '/usr/lib64:/lib64:ro', '-v', '/etc/passwd:/etc/passwd:ro', '-v', '/etc/group:/etc/group:ro',
               '-v', '%s:%s' % (self.base, self.base), BUSYBOX_IMAGE, *argv)

    def container_args(self, args):
        args.update(control='container', container=self.container)
        del args['data_dir']
        return args

    def destroy(self):
        docker('rm', '-f', self.container, check=False)
        return super(HostBinariesContainer, self).destroy()


class MariaContainerServer(HostBinariesContainer, MariaServer):
    def __init__(self):
        super(MariaContainerServer, self).__init__()
        self.container = unique('chaos-myc')

    def launch(self, argv):
        self.run_container(self.container, 'mysql', argv)

    def module_args(self, **extra):
        args = self.container_args(super(MariaContainerServer, self).module_args())
        args.update(extra)
        return args

    def log_tail(self):
        return docker('logs', self.container, check=False).stderr[-1500:] + super(MariaContainerServer, self).log_tail()


class PostgresContainerServer(HostBinariesContainer, PostgresServer):
    def __init__(self):
        super(PostgresContainerServer, self).__init__()
        self.container = unique('chaos-pgc')

    def launch(self):
        self.run_container(self.container, 'postgres', [os.path.join(PG_BIN, 'postgres'), '-D', self.data_dir]
                           + self.server_options())
        assert wait_for(lambda: subprocess.run([os.path.join(PG_BIN, 'pg_isready'), '-q', '-h', '127.0.0.1', '-p',
                                                str(self.port)]).returncode == 0, 60, 0.2), self.log_tail()

    def module_args(self, **extra):
        args = self.container_args(super(PostgresContainerServer, self).module_args())
        args.update(extra)
        return args

    def log_tail(self):
        return docker('logs', self.container, check=False).stderr[-1500:]
