"""A small HTTP service whose restart takes a known time, for the observer-effect tests and bench.

    python observer_service.py PORT [--host ADDRESS] [--ready-after SECONDS] [--pidfile PATH] [--pg-dsn DSN]

It listens only ``--ready-after`` seconds after its process started (the kernel's start time, so
interpreter start-up is inside the delay, not added to it): a restart of it is out for the
supervisor's respawn delay plus exactly that. ``/health`` answers 200; with ``--pg-dsn`` it
answers 200 only when PostgreSQL answers ``SELECT 1`` (503 otherwise), so a database outage is
seen over HTTP the way an application's users see it.
"""

import argparse
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def process_started_at():
    """Epoch seconds at which this process started, from /proc (10 ms resolution). The start is
    counted in ticks of the boot-time clock: it is placed on the wall clock through that clock
    itself, not through /proc/stat's btime, a whole second that drifts from the wall clock as the
    machine stays up (tenths of a second after a day: the service was ready that much too early)."""
    with open('/proc/self/stat') as handle:
        stat = handle.read()
    ticks = int(stat[stat.rfind(')') + 2:].split()[19])
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / float(os.sysconf('SC_CLK_TCK'))
    return time.time() - age


def handler_class(pg_dsn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.0'

        def do_GET(self):
            status, body = 200, b'ok'
            if pg_dsn:
                try:
                    import psycopg
                    with psycopg.connect(pg_dsn, connect_timeout=1) as conn:
                        conn.execute('SELECT 1')
                except Exception as exc:  # any database failure is this request's 503
                    status, body = 503, str(exc).encode('utf-8', 'replace')[:200]
            self.send_response(status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('port', type=int)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--ready-after', type=float, default=0.0)
    parser.add_argument('--pidfile')
    parser.add_argument('--pg-dsn')
    args = parser.parse_args(argv)
    if args.pidfile:
        with open(args.pidfile + '.tmp', 'w') as handle:
            handle.write('%d\n' % os.getpid())
        os.rename(args.pidfile + '.tmp', args.pidfile)
    time.sleep(max(0.0, process_started_at() + args.ready_after - time.time()))
    server = ThreadingHTTPServer((args.host, args.port), handler_class(args.pg_dsn))
    server.daemon_threads = True
    sys.stdout.write('listening on %d at %.3f\n' % (args.port, time.time()))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == '__main__':
    main()
