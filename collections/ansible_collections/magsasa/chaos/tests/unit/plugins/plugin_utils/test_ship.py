# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import pytest

from ansible_collections.magsasa.chaos.plugins.plugin_utils import _ship


@pytest.mark.parametrize('spec, expected', [
    ('/srv/chaos', {'kind': 'dir', 'path': '/srv/chaos'}),
    ('reports/archive', {'kind': 'dir', 'path': 'reports/archive'}),
    ('file:///srv/chaos', {'kind': 'dir', 'path': '/srv/chaos'}),
    ('s3://chaos-reports', {'kind': 's3', 'bucket': 'chaos-reports', 'prefix': ''}),
    ('s3://chaos-reports/staging/nightly/', {'kind': 's3', 'bucket': 'chaos-reports', 'prefix': 'staging/nightly'}),
    ('https://reports.example.com/chaos/', {'kind': 'http', 'url': 'https://reports.example.com/chaos'}),
    ('HTTP://u:p@reports.example.com', {'kind': 'http', 'url': 'HTTP://u:p@reports.example.com'}),
])
def test_parse_destination(spec, expected):
    assert _ship.parse_destination(spec) == expected


@pytest.mark.parametrize('spec, message', [
    ('', 'must be a non-empty string'),
    (None, 'must be a non-empty string'),
    ('s3:///prefix', 'names no bucket'),
    ('https:///path', 'has no host'),
    ('ftp://user:pw@host/x', "ftp://host/x: unknown scheme 'ftp'"),
])
def test_parse_destination_refuses(spec, message):
    with pytest.raises(_ship.ShipError, match=message):
        _ship.parse_destination(spec)


@pytest.mark.parametrize('url, shown', [
    ('https://reports.example.com/a', 'https://reports.example.com/a'),
    ('https://user:secret@reports.example.com:8443/a?x=1', 'https://reports.example.com:8443/a?x=1'),
    ('http://token@host/a', 'http://host/a'),
])
def test_public_url_drops_credentials(url, shown):
    assert _ship.public_url(url) == shown


class RecordingS3Client:
    """Stands in for boto3's client to check key layout only; the upload itself is boto3's."""

    def __init__(self):
        self.uploads = []

    def upload_file(self, path, bucket, key, ExtraArgs=None):
        self.uploads.append((path, bucket, key, ExtraArgs['ContentType']))


def test_s3_keys_are_prefix_run_file(tmp_path):
    files = []
    for name in ('chaos_report.md', 'junit.xml'):
        (tmp_path / name).write_text('x')
        files.append(str(tmp_path / name))
    client = RecordingS3Client()
    where = _ship.ship_to_s3(files, 'bucket', 'staging', 'chaos-1', client=client)
    assert where == 's3://bucket/staging/chaos-1/'
    assert [(b, k, t) for _p, b, k, t in client.uploads] == [
        ('bucket', 'staging/chaos-1/chaos_report.md', 'text/markdown; charset=utf-8'),
        ('bucket', 'staging/chaos-1/junit.xml', 'application/xml')]


def test_s3_without_boto3_names_the_missing_library(tmp_path, monkeypatch):
    monkeypatch.setattr(_ship, 'HAS_BOTO3', False)
    outcomes = _ship.ship([str(tmp_path / 'x')], ['s3://bucket/p'], 'chaos-1')
    message = 'ShipError: shipping to s3://bucket needs boto3 on the controller (pip install boto3)'
    assert outcomes == [('s3://bucket/p', False, message)]


def test_one_failing_destination_does_not_stop_the_next(tmp_path):
    report = tmp_path / 'chaos_report.md'
    report.write_text('# report')
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file where a directory should be')
    outcomes = _ship.ship([str(report)], [str(blocker), str(tmp_path / 'ok')], 'chaos-1')
    assert [ok for _d, ok, _w in outcomes] == [False, True]
    assert (tmp_path / 'ok' / 'chaos-1' / 'chaos_report.md').read_text() == '# report'


def test_bad_http_method_is_refused(tmp_path):
    with pytest.raises(_ship.ShipError, match="HTTP method must be one of PUT, POST, got 'GET'"):
        _ship.ship_to_http([], 'http://127.0.0.1:1/x', 'chaos-1', method='GET')
