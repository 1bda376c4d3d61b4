"""A real Prometheus and Pushgateway for the monitoring tests (Debian's ``prometheus`` and
``prometheus-pushgateway``), started on free loopback ports in a temporary directory.

Prometheus scrapes the Pushgateway every second with ``honor_labels`` (the pushed ``job`` and
labels stay as pushed). ``prometheus_stack`` is a session fixture: every test shares one pair.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import free_port, require

SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def _wait_ready(url, proc, what, log, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('%s exited with %s:\n%s' % (what, proc.returncode, open(log).read()[-3000:]))
        try:
            if http_get(url, timeout=1)[0] == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError('%s did not become ready at %s:\n%s' % (what, url, open(log).read()[-3000:]))


class PrometheusStack:
    """One Pushgateway and one Prometheus scraping it; ``stop()`` ends both and removes their files."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix='magsasa-prom-')
        self.procs = []
        self.gateway_port = free_port()
        self.gateway_url = 'http://127.0.0.1:%d' % self.gateway_port
        self.prometheus_port = free_port()
        self.prometheus_url = 'http://127.0.0.1:%d' % self.prometheus_port

    def _start(self, argv, name):
        log = os.path.join(self.root, name + '.log')
        with open(log, 'w') as output:
            proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.root, start_new_session=True)
        self.procs.append(proc)
        return proc, log

    def start(self, pushgateway, prometheus):
        # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: keep ours in the temp dir.
        proc, log = self._start([pushgateway, '--web.listen-address=127.0.0.1:%d' % self.gateway_port,
                                 '--persistence.file=' + os.path.join(self.root, 'pushgateway.data')], 'pushgateway')
        _wait_ready(self.gateway_url + '/-/ready', proc, 'prometheus-pushgateway', log)
        config = os.path.join(self.root, 'prometheus.yml')
        with open(config, 'w') as handle:
            handle.write(SCRAPE_CONFIG.format(port=self.gateway_port))
        proc, log = self._start([prometheus, '--config.file=' + config,
                                 '--storage.tsdb.path=' + os.path.join(self.root, 'tsdb'),
                                 '--web.listen-address=127.0.0.1:%d' % self.prometheus_port], 'prometheus')
        _wait_ready(self.prometheus_url + '/-/ready', proc, 'prometheus', log)
        return self

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def query(self, expression):
        """The instant-query result list of an expression through the Prometheus HTTP API."""
        url = '%s/api/v1/query?%s' % (self.prometheus_url, urllib.parse.urlencode({'query': expression}))
        status, body = http_get(url)
        document = json.loads(body)
        assert status == 200 and document['status'] == 'success', body
        return document['data']['result']

    def wait_for(self, expression, predicate=bool, timeout=30):
        """Poll an expression until ``predicate(result)`` holds; return the result (or fail with the last one)."""
        deadline = time.time() + timeout
        result = None
        while time.time() < deadline:
            result = self.query(expression)
            if predicate(result):
                return result
            time.sleep(0.5)
        pytest.fail('%s never satisfied the condition within %s s; last result %s' % (expression, timeout, result))

    def push(self, job, text):
        """PUT metrics in the text format to the Pushgateway group of ``job``."""
        request = urllib.request.Request('%s/metrics/job/%s' % (self.gateway_url, job), data=text.encode(),
                                         method='PUT', headers={'Content-Type': 'text/plain; version=0.0.4'})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status in (200, 202), response.status

    def delete(self, job):
        request = urllib.request.Request('%s/metrics/job/%s' % (self.gateway_url, job), method='DELETE')
        with urllib.request.urlopen(request, timeout=5):
            pass


@pytest.fixture(scope='session')
def prometheus_stack():
    prometheus = require('prometheus', 'apt-get install prometheus (.ci/install-system)')
    pushgateway = require('prometheus-pushgateway', 'apt-get install prometheus-pushgateway (.ci/install-system)')
    stack = PrometheusStack()
    try:
        yield stack.start(pushgateway, prometheus)
    finally:
        stack.stop()
