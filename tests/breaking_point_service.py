"""A test service with a known breaking point: GET /health answers 503 while the free space of a
directory's filesystem is below a threshold, 200 otherwise.

    python breaking_point_service.py PATH THRESHOLD_BYTES

Listens on 127.0.0.1 on a free port and prints that port on its first line of output.
"""

import http.server
import os
import sys


def main():
    path, threshold = sys.argv[1], int(sys.argv[2])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # pylint: disable=invalid-name
            stat = os.statvfs(path)
            free = stat.f_bavail * stat.f_frsize
            ok = free >= threshold
            body = ("free=%d threshold=%d\n" % (free, threshold)).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
