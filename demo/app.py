#!/usr/bin/env python3
"""MAGSASA-CARD ERP demo: a small HTTP API for farmers and loans over PostgreSQL.

It is the system under test of magsasa.chaos. It keeps working through the faults the
experiments inject: the connection pool drops broken connections and reconnects with
exponential backoff, so the API recovers by itself after database downtime, and
``/api/health`` tells the truth about the database in the meantime (503 with a reason).

Only the standard library plus one PostgreSQL driver: psycopg (3) when importable,
else psycopg2. Configuration comes from the environment (see ``Config``); logs go to stdout.
"""

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

try:
    import psycopg as driver
    DRIVER_NAME = "psycopg"
except ImportError:
    import psycopg2 as driver
    DRIVER_NAME = "psycopg2"

LOG = logging.getLogger("erp_demo")

SCHEMA = """
CREATE TABLE IF NOT EXISTS farmers (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    province TEXT,
    municipality TEXT,
    crop TEXT,
    farm_size_ha NUMERIC(8, 2) CHECK (farm_size_ha >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS loans (
    id BIGSERIAL PRIMARY KEY,
    farmer_id BIGINT NOT NULL REFERENCES farmers (id),
    amount NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
    term_months INTEGER NOT NULL CHECK (term_months BETWEEN 1 AND 60),
    purpose TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'released', 'repaid', 'rejected')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS loans_farmer_id_idx ON loans (farmer_id);
"""
# Several API instances may start against one database at once; DDL runs under this lock.
SCHEMA_LOCK_KEY = 7427261


class Config(object):
    """Settings from the environment, with defaults for a local run."""

    def __init__(self, env):
        self.listen_host = env.get("DEMO_LISTEN_HOST", "127.0.0.1")
        self.listen_port = _int_setting(env, "DEMO_LISTEN_PORT", 8080, 0, 65535)
        self.db_host = env.get("DEMO_DB_HOST", "127.0.0.1")
        self.db_port = _int_setting(env, "DEMO_DB_PORT", 5432, 1, 65535)
        self.db_name = env.get("DEMO_DB_NAME", "magsasa_erp")
        self.db_user = env.get("DEMO_DB_USER", "magsasa")
        self.db_password = _password(env)
        self.pool_size = _int_setting(env, "DEMO_POOL_SIZE", 8, 1, 200)
        self.pool_wait = _float_setting(env, "DEMO_POOL_WAIT", 2.0)
        self.connect_timeout = _int_setting(env, "DEMO_DB_CONNECT_TIMEOUT", 3, 1, 60)
        self.statement_timeout_ms = _int_setting(env, "DEMO_DB_STATEMENT_TIMEOUT_MS", 5000, 1, 600000)
        self.backoff_initial = _float_setting(env, "DEMO_BACKOFF_INITIAL", 0.1)
        self.backoff_max = _float_setting(env, "DEMO_BACKOFF_MAX", 2.0)
        self.access_log = env.get("DEMO_ACCESS_LOG", "1") not in ("0", "false", "no")
        self.exit_with_parent = env.get("DEMO_EXIT_WITH_PARENT", "0") in ("1", "true", "yes")

    def connect_kwargs(self):
        # TCP keepalives make a connection to a partitioned database fail in seconds,
        # not after the kernel's two-hour default.
        return {
            "host": self.db_host,
            "port": self.db_port,
            "dbname": self.db_name,
            "user": self.db_user,
            "password": self.db_password,
            "connect_timeout": self.connect_timeout,
            "application_name": "magsasa-erp-demo",
            "options": "-c statement_timeout=%d" % self.statement_timeout_ms,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
        }


def _int_setting(env, name, default, low, high):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit("%s must be an integer, got %r" % (name, raw))
    if not low <= value <= high:
        raise SystemExit("%s must be %d-%d, got %d" % (name, low, high, value))
    return value


def _float_setting(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit("%s must be a number, got %r" % (name, raw))
    if value <= 0:
        raise SystemExit("%s must be positive, got %s" % (name, raw))
    return value


def _password(env):
    path = env.get("DEMO_DB_PASSWORD_FILE")
    if path:
        try:
            with open(path) as handle:
                return handle.read().strip()
        except OSError as exc:
            raise SystemExit("DEMO_DB_PASSWORD_FILE %s cannot be read: %s" % (path, exc))
    return env.get("DEMO_DB_PASSWORD", "")


class DatabaseUnavailable(Exception):
    """The database cannot serve the request now; the API answers 503."""


class _BrokenConnection(Exception):
    """The connection died under the query (the server closed it)."""


class ConnectionPool(object):
    """A bounded pool of driver connections that survives database restarts.

    A connection that fails with a connection-level error is discarded together with the
    idle ones (a database restart breaks them all). New connections are opened on demand;
    after a failed attempt the next one waits an exponentially growing delay, capped at
    ``backoff_max``, and requests meanwhile fail fast with the last error instead of
    piling up on connect timeouts. One thread connects at a time.
    """

    def __init__(self, config):
        self._config = config
        self._idle = []
        self._in_use = 0
        self._cond = threading.Condition()
        self._connect_lock = threading.Lock()
        self._delay = 0.0
        self._next_attempt = 0.0
        self._last_error = None
        self._schema_ready = False
        self.reconnects = 0

    def _connect(self):
        now = time.monotonic()
        if now < self._next_attempt:
            raise DatabaseUnavailable("database unreachable (%s); next reconnect attempt in %.1f s"
                                      % (self._last_error, self._next_attempt - now))
        if not self._connect_lock.acquire(False):
            raise DatabaseUnavailable("database reconnect in progress (last error: %s)" % self._last_error)
        conn = None
        try:
            conn = driver.connect(**self._config.connect_kwargs())
            if not self._schema_ready:
                _create_schema(conn)
                self._schema_ready = True
        except driver.Error as exc:
            if conn is not None:
                _close_quietly(conn)
            self._last_error = _one_line(exc)
            self._delay = min(max(self._delay * 2, self._config.backoff_initial), self._config.backoff_max)
            self._next_attempt = time.monotonic() + self._delay
            LOG.warning("database connect failed (retry in %.2f s): %s", self._delay, self._last_error)
            raise DatabaseUnavailable("database unreachable: %s" % self._last_error)
        finally:
            self._connect_lock.release()
        if self._last_error is not None:
            self.reconnects += 1
            LOG.info("database connection restored after: %s", self._last_error)
        self._delay = 0.0
        self._next_attempt = 0.0
        self._last_error = None
        return conn

    def _acquire(self):
        deadline = time.monotonic() + self._config.pool_wait
        with self._cond:
            while not self._idle and self._in_use >= self._config.pool_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DatabaseUnavailable("connection pool exhausted (%d in use)" % self._in_use)
                self._cond.wait(remaining)
            self._in_use += 1
            if self._idle:
                return self._idle.pop(), True
        try:
            return self._connect(), False
        except Exception:
            self._release(None)
            raise

    def _release(self, conn):
        with self._cond:
            self._in_use -= 1
            if conn is not None:
                self._idle.append(conn)
            self._cond.notify()

    def _discard_all_idle(self):
        with self._cond:
            stale, self._idle = self._idle, []
        for conn in stale:
            _close_quietly(conn)

    def run(self, work):
        """Run ``work(cursor)`` in one transaction and return its result.

        A pooled connection that a database restart broke is dropped and the work runs once
        more on a fresh connection; a failure during COMMIT is not retried, because the
        write may have landed.
        """
        conn, reused = self._acquire()
        try:
            return self._transaction(conn, work)
        except _BrokenConnection as exc:
            if not reused:
                raise DatabaseUnavailable("database error: %s" % exc)
            LOG.info("dropped a broken pooled connection: %s", exc)
        try:
            return self._transaction(self._acquire()[0], work)
        except _BrokenConnection as exc:
            raise DatabaseUnavailable("database error: %s" % exc)

    def _transaction(self, conn, work):
        """Run ``work`` on ``conn`` and commit; give the connection back or drop it."""
        try:
            with conn.cursor() as cur:
                result = work(cur)
        except Exception as exc:
            if _is_closed(conn):
                self._drop(conn)
                raise _BrokenConnection(_one_line(exc))
            _rollback_or_close(conn)
            self._release(None if _is_closed(conn) else conn)
            if isinstance(exc, driver.OperationalError):
                # e.g. statement_timeout under lock contention: the database is there but not serving
                raise DatabaseUnavailable("database error: %s" % _one_line(exc))
            raise
        try:
            conn.commit()
        except driver.Error as exc:
            self._drop(conn)
            raise DatabaseUnavailable("database error during commit: %s" % _one_line(exc))
        self._release(conn)
        return result

    def _drop(self, conn):
        """Close a broken connection and the idle ones: a database restart broke them all."""
        _close_quietly(conn)
        self._release(None)
        self._discard_all_idle()

    def close(self):
        self._discard_all_idle()


def _create_schema(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cur.execute(SCHEMA)
    conn.commit()
    LOG.info("schema ready")


def _is_closed(conn):
    return bool(conn.closed) or bool(getattr(conn, "broken", False))


def _close_quietly(conn):
    try:
        conn.close()
    except Exception:  # the connection is already gone; nothing to release
        pass


def _rollback_or_close(conn):
    try:
        conn.rollback()
    except Exception:
        _close_quietly(conn)


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


class BadRequest(Exception):
    """Invalid client input; the message names the field and the value."""


class NotFound(Exception):
    pass


FARMER_COLUMNS = ("id", "name", "province", "municipality", "crop", "farm_size_ha", "created_at")
LOAN_COLUMNS = ("id", "farmer_id", "amount", "term_months", "purpose", "status", "created_at")
LOAN_STATUSES = ("pending", "approved", "released", "repaid", "rejected")


def _row(columns, values):
    record = {}
    for name, value in zip(columns, values):
        if isinstance(value, Decimal):
            value = float(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        record[name] = value
    return record


def _text(body, field, required=False, max_length=200):
    value = body.get(field)
    if value is None:
        if required:
            raise BadRequest("`%s` is required" % field)
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("`%s` must be a non-empty string, got %r" % (field, value))
    if len(value) > max_length:
        raise BadRequest("`%s` must be at most %d characters, got %d" % (field, max_length, len(value)))
    return value.strip()


def _number(body, field, required=False, minimum=None, maximum=None, integer=False):
    value = body.get(field)
    if value is None:
        if required:
            raise BadRequest("`%s` is required" % field)
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadRequest("`%s` must be %s, got %r" % (field, "an integer" if integer else "a number", value))
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise BadRequest("`%s` must be %s-%s, got %r" % (field, minimum, maximum, value))
    return value


class ErpStore(object):
    """The queries behind the endpoints."""

    def __init__(self, pool):
        self.pool = pool

    def health(self):
        def check(cur):
            cur.execute("SELECT 1")
            return cur.fetchone()[0]
        started = time.monotonic()
        self.pool.run(check)
        return {"status": "ok", "database": "up", "driver": DRIVER_NAME,
                "latency_ms": round((time.monotonic() - started) * 1000, 2),
                "reconnects": self.pool.reconnects}

    def list_farmers(self, limit, offset):
        def query(cur):
            cur.execute("SELECT %s FROM farmers ORDER BY id LIMIT %%s OFFSET %%s" % ", ".join(FARMER_COLUMNS),
                        (limit, offset))
            return [_row(FARMER_COLUMNS, r) for r in cur.fetchall()]
        return self.pool.run(query)

    def get_farmer(self, farmer_id):
        def query(cur):
            cur.execute("SELECT %s FROM farmers WHERE id = %%s" % ", ".join(FARMER_COLUMNS), (farmer_id,))
            found = cur.fetchone()
            if found is None:
                raise NotFound("farmer %d not found" % farmer_id)
            farmer = _row(FARMER_COLUMNS, found)
            cur.execute("SELECT count(*), coalesce(sum(amount), 0) FROM loans WHERE farmer_id = %s", (farmer_id,))
            count, total = cur.fetchone()
            farmer["loan_count"] = count
            farmer["loan_total"] = float(total)
            return farmer
        return self.pool.run(query)

    def create_farmer(self, body):
        values = (
            _text(body, "name", required=True),
            _text(body, "province"),
            _text(body, "municipality"),
            _text(body, "crop"),
            _number(body, "farm_size_ha", minimum=0, maximum=100000),
        )

        def insert(cur):
            cur.execute("INSERT INTO farmers (name, province, municipality, crop, farm_size_ha) "
                        "VALUES (%%s, %%s, %%s, %%s, %%s) RETURNING %s" % ", ".join(FARMER_COLUMNS), values)
            return _row(FARMER_COLUMNS, cur.fetchone())
        return self.pool.run(insert)

    def list_loans(self, limit, offset, farmer_id):
        def query(cur):
            where, params = "", [limit, offset]
            if farmer_id is not None:
                where, params = "WHERE farmer_id = %s ", [farmer_id, limit, offset]
            cur.execute("SELECT %s FROM loans %sORDER BY id LIMIT %%s OFFSET %%s" % (", ".join(LOAN_COLUMNS), where),
                        params)
            return [_row(LOAN_COLUMNS, r) for r in cur.fetchall()]
        return self.pool.run(query)

    def get_loan(self, loan_id):
        def query(cur):
            cur.execute("SELECT %s FROM loans WHERE id = %%s" % ", ".join(LOAN_COLUMNS), (loan_id,))
            found = cur.fetchone()
            if found is None:
                raise NotFound("loan %d not found" % loan_id)
            return _row(LOAN_COLUMNS, found)
        return self.pool.run(query)

    def create_loan(self, body):
        farmer_id = _number(body, "farmer_id", required=True, minimum=1, maximum=2 ** 62, integer=True)
        amount = _number(body, "amount", required=True, minimum=1, maximum=10000000)
        term = _number(body, "term_months", required=True, minimum=1, maximum=60, integer=True)
        purpose = _text(body, "purpose")
        status = _text(body, "status") or "pending"
        if status not in LOAN_STATUSES:
            raise BadRequest("`status` must be one of %s, got %r" % (", ".join(LOAN_STATUSES), status))

        def insert(cur):
            cur.execute("SELECT 1 FROM farmers WHERE id = %s", (farmer_id,))
            if cur.fetchone() is None:
                raise NotFound("farmer %d not found" % farmer_id)
            cur.execute("INSERT INTO loans (farmer_id, amount, term_months, purpose, status) "
                        "VALUES (%%s, %%s, %%s, %%s, %%s) RETURNING %s" % ", ".join(LOAN_COLUMNS),
                        (farmer_id, amount, term, purpose, status))
            return _row(LOAN_COLUMNS, cur.fetchone())
        return self.pool.run(insert)


def _paging(query):
    params = parse_qs(query)

    def one(name, default, low, high):
        raw = params.get(name, [None])[-1]
        if raw is None:
            return default
        if not re.match(r"^\d+$", raw) or not low <= int(raw) <= high:
            raise BadRequest("`%s` must be an integer %d-%d, got %r" % (name, low, high, raw))
        return int(raw)
    farmer_id = params.get("farmer_id", [None])[-1]
    if farmer_id is not None:
        farmer_id = one("farmer_id", None, 1, 2 ** 62)
    return one("limit", 50, 1, 500), one("offset", 0, 0, 2 ** 31), farmer_id


ROUTES = (
    ("GET", re.compile(r"^/api/health$"), "health"),
    ("GET", re.compile(r"^/api/farmers$"), "list_farmers"),
    ("POST", re.compile(r"^/api/farmers$"), "create_farmer"),
    ("GET", re.compile(r"^/api/farmers/(\d{1,18})$"), "get_farmer"),
    ("GET", re.compile(r"^/api/loans$"), "list_loans"),
    ("POST", re.compile(r"^/api/loans$"), "create_loan"),
    ("GET", re.compile(r"^/api/loans/(\d{1,18})$"), "get_loan"),
    ("GET", re.compile(r"^/$"), "index"),
)
MAX_BODY = 64 * 1024


class ApiHandler(BaseHTTPRequestHandler):
    server_version = "magsasa-erp-demo/1.0"
    protocol_version = "HTTP/1.1"
    store = None
    access_log = True

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        url = urlsplit(self.path)
        allowed = []
        for route_method, pattern, action in ROUTES:
            match = pattern.match(url.path)
            if not match:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            try:
                status, payload = getattr(self, "_" + action)(url.query, *match.groups())
            except BadRequest as exc:
                status, payload = 400, {"error": str(exc)}
            except NotFound as exc:
                status, payload = 404, {"error": str(exc)}
            except DatabaseUnavailable as exc:
                status, payload = 503, {"status": "unavailable", "error": str(exc)}
            except driver.Error as exc:
                LOG.exception("database error on %s %s", method, url.path)
                status, payload = 500, {"error": "database error: %s" % _one_line(exc)}
            self._send(status, payload)
            return
        if allowed:
            self._send(405, {"error": "method %s not allowed on %s" % (method, url.path)}, {"Allow": ", ".join(allowed)})
        else:
            self._send(404, {"error": "no such endpoint: %s" % url.path})

    def _index(self, query):
        return 200, {"service": "MAGSASA-CARD ERP demo", "driver": DRIVER_NAME,
                     "endpoints": ["/api/health", "/api/farmers", "/api/farmers/<id>", "/api/loans", "/api/loans/<id>"]}

    def _health(self, query):
        try:
            return 200, self.store.health()
        except DatabaseUnavailable as exc:
            return 503, {"status": "unavailable", "database": "down", "reason": str(exc)}

    def _list_farmers(self, query):
        limit, offset, _unused = _paging(query)
        return 200, {"farmers": self.store.list_farmers(limit, offset)}

    def _get_farmer(self, query, farmer_id):
        return 200, self.store.get_farmer(int(farmer_id))

    def _create_farmer(self, query):
        return 201, self.store.create_farmer(self._json_body())

    def _list_loans(self, query):
        limit, offset, farmer_id = _paging(query)
        return 200, {"loans": self.store.list_loans(limit, offset, farmer_id)}

    def _get_loan(self, query, loan_id):
        return 200, self.store.get_loan(int(loan_id))

    def _create_loan(self, query):
        return 201, self.store.create_loan(self._json_body())

    def _json_body(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise BadRequest("Content-Length must be an integer")
        if length <= 0:
            raise BadRequest("a JSON object body is required")
        if length > MAX_BODY:
            raise BadRequest("body must be at most %d bytes, got %d" % (MAX_BODY, length))
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except ValueError as exc:
            raise BadRequest("body is not valid JSON: %s" % exc)
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object, got %s" % type(body).__name__)
        return body

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode("utf-8") + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.access_log:
            LOG.info("%s %s", self.address_string(), fmt % args)


def exit_when_orphaned(parent_pid):
    """Exit when the supervisor that started us is gone.

    Otherwise a killed supervisord would leave the API holding its port, and the next
    supervisord could not start a fresh one.
    """
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            LOG.warning("parent process %d is gone; exiting", parent_pid)
            os._exit(1)


def serve(config):
    pool = ConnectionPool(config)
    handler = type("BoundApiHandler", (ApiHandler,), {"store": ErpStore(pool), "access_log": config.access_log})
    server = ThreadingHTTPServer((config.listen_host, config.listen_port), handler)
    server.daemon_threads = True

    def stop(signum, frame):
        LOG.info("signal %d: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if config.exit_with_parent:
        threading.Thread(target=exit_when_orphaned, args=(os.getppid(),), daemon=True).start()

    host, port = server.server_address[:2]
    LOG.info("MAGSASA-CARD ERP demo (pid %d, driver %s) listening on http://%s:%d, database %s:%d/%s",
             os.getpid(), DRIVER_NAME, host, port, config.db_host, config.db_port, config.db_name)
    try:
        pool.run(lambda cur: cur.execute("SELECT 1"))
    except DatabaseUnavailable as exc:
        LOG.warning("starting without the database; will keep reconnecting: %s", exc)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        pool.close()
    LOG.info("stopped")


def main():
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Config(os.environ))


if __name__ == "__main__":
    main()
