# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Ship the report files off the machine that ran the playbook (controller side).

An AWX job runs in a container that is thrown away with the job, and a CI runner is wiped
after its run: the report has to go somewhere that lasts. Each destination is one string:

* a directory (``/srv/chaos-reports`` or ``file:///srv/chaos-reports``): copied there
* ``s3://bucket/prefix``: uploaded with boto3 (optional; an S3-compatible endpoint such as
  MinIO or Ceph through ``endpoint_url``; credentials the usual AWS way)
* ``http://`` or ``https://`` URL: each file sent with PUT (or POST) to ``<url>/<run id>/<file>``

Files land under ``<run id>/`` so runs never overwrite each other. A destination that fails is
reported back (with the reason, credentials stripped from the URL); it never stops the others.
"""

import os
import shutil

from urllib.parse import quote, urlsplit, urlunsplit

from ansible.module_utils.urls import open_url

try:
    import boto3
    HAS_BOTO3 = True
except ImportError:
    boto3 = None
    HAS_BOTO3 = False

CONTENT_TYPES = {'.md': 'text/markdown; charset=utf-8', '.json': 'application/json', '.xml': 'application/xml'}
HTTP_METHODS = ('PUT', 'POST')


class ShipError(Exception):
    pass


def public_url(url):
    """The URL without user:password@ (for messages)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ''
    if parts.port:
        netloc += ':%d' % parts.port
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_destination(spec):
    """One destination string -> {'kind': 'dir'|'s3'|'http', ...}; ShipError on a malformed one."""
    if not isinstance(spec, str) or not spec.strip():
        raise ShipError('a report destination must be a non-empty string, got %r' % (spec,))
    spec = spec.strip()
    scheme = urlsplit(spec).scheme.lower()
    if scheme in ('http', 'https'):
        if not urlsplit(spec).hostname:
            raise ShipError('report destination %s has no host' % public_url(spec))
        return {'kind': 'http', 'url': spec.rstrip('/')}
    if scheme == 's3':
        parts = urlsplit(spec)
        if not parts.netloc:
            raise ShipError('report destination %s names no bucket (s3://bucket/prefix)' % spec)
        return {'kind': 's3', 'bucket': parts.netloc, 'prefix': parts.path.strip('/')}
    if scheme == 'file':
        return {'kind': 'dir', 'path': urlsplit(spec).path}
    if scheme and len(scheme) > 1:
        raise ShipError('report destination %s: unknown scheme %r (use a directory, s3://, http:// or https://)'
                        % (public_url(spec), scheme))
    return {'kind': 'dir', 'path': spec}


def ship_to_dir(files, directory, run):
    target = os.path.join(os.path.abspath(directory), run)
    os.makedirs(target, exist_ok=True)
    for path in files:
        shutil.copyfile(path, os.path.join(target, os.path.basename(path)))
    return target


def ship_to_http(files, url, run, method='PUT', token=None, timeout=30, validate_certs=True):
    if method not in HTTP_METHODS:
        raise ShipError('HTTP method must be one of %s, got %r' % (', '.join(HTTP_METHODS), method))
    parts = urlsplit(url)
    auth = {}
    if parts.username is not None:
        auth = {'url_username': parts.username, 'url_password': parts.password or '', 'force_basic_auth': True}
    base = public_url(url)
    for path in files:
        name = os.path.basename(path)
        headers = {'Content-Type': CONTENT_TYPES.get(os.path.splitext(name)[1], 'application/octet-stream')}
        if token:
            headers['Authorization'] = 'Bearer %s' % token
        with open(path, 'rb') as handle:
            body = handle.read()
        response = open_url('%s/%s/%s' % (base, quote(run), quote(name)), data=body, method=method, headers=headers,
                            timeout=timeout, validate_certs=validate_certs, **auth)
        status = response.getcode()
        if status >= 300:
            raise ShipError('%s %s/%s/%s answered %s' % (method, base, run, name, status))
    return '%s/%s/' % (base, run)


def ship_to_s3(files, bucket, prefix, run, endpoint_url=None, client=None):
    if client is None:
        if not HAS_BOTO3:
            raise ShipError('shipping to s3://%s needs boto3 on the controller (pip install boto3)' % bucket)
        client = boto3.client('s3', endpoint_url=endpoint_url or None)
    key_prefix = '/'.join(p for p in (prefix, run) if p)
    for path in files:
        name = os.path.basename(path)
        client.upload_file(path, bucket, '%s/%s' % (key_prefix, name),
                           ExtraArgs={'ContentType': CONTENT_TYPES.get(os.path.splitext(name)[1], 'application/octet-stream')})
    return 's3://%s/%s/' % (bucket, key_prefix)


def ship(files, destinations, run, http_method='PUT', http_token=None, s3_endpoint_url=None, validate_certs=True):
    """Send every file to every destination; one (destination shown, ok, where or why) per destination."""
    outcomes = []
    for spec in destinations or []:
        shown = public_url(spec) if isinstance(spec, str) else repr(spec)
        try:
            dest = parse_destination(spec)
            if dest['kind'] == 'dir':
                where = ship_to_dir(files, dest['path'], run)
            elif dest['kind'] == 'http':
                where = ship_to_http(files, dest['url'], run, method=http_method, token=http_token,
                                     validate_certs=validate_certs)
            else:
                where = ship_to_s3(files, dest['bucket'], dest['prefix'], run, endpoint_url=s3_endpoint_url)
            outcomes.append((shown, True, where))
        except Exception as exc:  # one broken destination must not cost the others
            message = str(exc)
            if isinstance(spec, str):
                message = message.replace(spec, shown)
            if http_token:
                message = message.replace(http_token, '********')
            outcomes.append((shown, False, '%s: %s' % (type(exc).__name__, message)))
    return outcomes
