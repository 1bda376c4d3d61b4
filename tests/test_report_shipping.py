"""Report shipping off the execution node, through real ansible-playbook runs.

The chaos_report callback copies the files it wrote to a directory and sends them to an HTTP
endpoint: here a real HTTP server this test starts on loopback, which keeps what it receives.
"""

import json

import pytest

from harness import QuietHandler, Service
from test_report_callback import read_reports, run_records

pytestmark = pytest.mark.timeout(300)
TOKEN = 'ship-token-7f3a'


class Receiver(Service):
    """Stores every PUT/POST body by path; answers `status` (201 unless told otherwise)."""

    def __init__(self, status=201):
        super().__init__(ReceiverHandler, path='/chaos', status=status, received={})
        self.received = self.server.received


class ReceiverHandler(QuietHandler):
    def _store(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.server.received[self.path] = {'method': self.command, 'body': body,
                                           'content_type': self.headers.get('Content-Type'),
                                           'authorization': self.headers.get('Authorization')}
        self.reply(self.server.status)

    do_PUT = _store
    do_POST = _store


def shipped_files(proc):
    return [line for line in (proc.stdout + proc.stderr).splitlines() if 'report shipped to' in line]


def test_reports_shipped_to_a_directory_and_an_http_endpoint(tmp_path):
    archive = tmp_path / 'archive'
    with Receiver() as receiver:
        proc = run_records(tmp_path, '-e', 'report_set=violations', '-e', json.dumps(
            {'chaos_report_ship_to': [str(archive), receiver.url]}),
            env={'CHAOS_REPORT_SHIP_HTTP_TOKEN': TOKEN})
        received = dict(receiver.received)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr

    written = {p.name: p.read_bytes() for p in (tmp_path / 'reports').iterdir() if p.is_file()}  # not history/
    assert set(written) == {'chaos_report.md', 'chaos_results.json', 'junit.xml'}
    # Shipped under the run's own id, the one its run history entry is named by.
    history, = (tmp_path / 'reports' / 'history').glob('*.json')
    run_dir = 'chaos-' + history.stem

    # The directory holds byte-identical copies under the run's own directory.
    copies = archive / run_dir
    assert {p.name: p.read_bytes() for p in copies.iterdir()} == written
    read_reports(copies)

    # The endpoint received each file once, by PUT, at <url>/<run>/<file>, with our token.
    assert set(received) == {'/chaos/%s/%s' % (run_dir, name) for name in written}
    for name, body in written.items():
        got = received['/chaos/%s/%s' % (run_dir, name)]
        assert got['method'] == 'PUT' and got['body'] == body and got['authorization'] == 'Bearer ' + TOKEN
    assert received['/chaos/%s/chaos_results.json' % run_dir]['content_type'] == 'application/json'
    assert received['/chaos/%s/chaos_report.md' % run_dir]['content_type'].startswith('text/markdown')
    assert len(shipped_files(proc)) == 2


def test_post_and_a_failing_destination_does_not_stop_the_others(tmp_path):
    """From the ini/env options: POST to one endpoint that refuses, one that accepts, and basic auth from the URL."""
    with Receiver(status=500) as refusing, Receiver() as accepting:
        accepting_url = accepting.url.replace('http://', 'http://chaos:s3cret@')
        proc = run_records(tmp_path, '-e', 'report_set=violations', env={
            'CHAOS_REPORT_SHIP_TO': '%s,%s' % (refusing.url, accepting_url),
            'CHAOS_REPORT_SHIP_HTTP_METHOD': 'POST'})
        accepted = dict(accepting.received)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert 's3cret' not in output
    assert 'could not ship the report to %s' % refusing.url in output and '500' in output
    assert len(accepted) == 3 and all(r['method'] == 'POST' for r in accepted.values())
    assert {r['authorization'] for r in accepted.values()} == {'Basic Y2hhb3M6czNjcmV0'}  # chaos:s3cret
    assert len(shipped_files(proc)) == 1


def test_a_malformed_destination_is_named_in_a_warning(tmp_path):
    proc = run_records(tmp_path, '-e', 'report_set=violations', '-e', json.dumps(
        {'chaos_report_ship_to': 'ftp://example.invalid/reports'}))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "unknown scheme 'ftp'" in output and 'ftp://example.invalid/reports' in output
    assert (tmp_path / 'reports' / 'chaos_report.md').exists()
