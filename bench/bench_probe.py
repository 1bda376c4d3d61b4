"""Benchmark: can one resilience_probe sampler hold 10 / 50 / 100 Hz, and what does it cost?

Runs the real detached sampler (the same code `state: started` launches) against a loopback
HTTP server for --duration seconds per rate, one rate after the other, and prints a table:
slots scheduled, samples written, missed-slot % (not probed, or sent more than one interval
late), send lag behind the schedule, and the sampler process's own CPU use.

    .venv/bin/python bench/bench_probe.py [--duration 60] [--rates 10,50,100]

A printed table, not a timed test: numbers depend on the machine and on what else runs.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'collections'))

from ansible_collections.magsasa.chaos.plugins.module_utils import _metrics, _probe  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, 'tests'))
from harness.services import Service  # noqa: E402 (the tests' loopback service)


def percentile(values, pct):
    return _metrics.percentile(values, pct) or 0.0


def run_rate(url, directory, rate, duration):
    interval = 1.0 / rate
    probe_id = 'bench-%dhz-%d' % (rate, os.getpid())
    config = {'type': 'http', 'url': url, 'interval': interval, 'timeout': 1.0, 'max_lifetime': duration + 30,
              'probe_id': probe_id, 'concurrency': _probe.default_concurrency(interval, 1.0)}
    state = _probe.launch(config, directory)
    process = psutil.Process(state['pid'])
    cpu_start = process.cpu_times()
    wall_start = time.monotonic()
    time.sleep(duration)
    cpu_end = process.cpu_times()
    wall = time.monotonic() - wall_start
    rss_mb = process.memory_info().rss / 1e6
    _probe.stop(directory, probe_id)
    paths = _probe.probe_paths(directory, probe_id)
    with open(paths['state'], encoding='utf-8') as handle:
        final = json.load(handle)
    samples = _metrics.load_samples_file(paths['samples'])
    lags_ms = [(s['sent'] - s['scheduled']) * 1000.0 for s in samples]
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    scheduled = final['slots_scheduled']
    return {
        'rate': rate,
        'scheduled': scheduled,
        'samples': len(samples),
        'failed': sum(1 for s in samples if not s['ok']),
        'missed_pct': 100.0 * (final['slots_missed'] + final['slots_late']) / scheduled if scheduled else 0.0,
        'lag_p50': percentile(lags_ms, 50),
        'lag_p99': percentile(lags_ms, 99),
        'lat_p50': percentile([s['latency_ms'] for s in samples], 50),
        'cpu_pct': 100.0 * cpu / wall,
        'cpu_ms_per_sample': 1000.0 * cpu / max(1, len(samples)),
        'rss_mb': rss_mb,
        'workers': final['workers'],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0, help='seconds per rate (default 60)')
    parser.add_argument('--rates', default='10,50,100', help='comma-separated sampling rates in Hz')
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(',')]

    target = Service(path='/health')
    url = target.url
    directory = tempfile.mkdtemp(prefix='bench-probe-')
    print('resilience_probe sampler, %.0f s per rate, %d CPUs, loopback HTTP, python %s'
          % (args.duration, psutil.cpu_count(), sys.version.split()[0]))
    header = ('rate Hz', 'slots', 'samples', 'failed', 'missed %', 'lag p50 ms', 'lag p99 ms', 'latency p50 ms',
              'CPU %', 'CPU ms/sample', 'RSS MB', 'workers')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '|'.join('-' * (len(h) + 2) for h in header) + '|')
    try:
        for rate in rates:
            row = run_rate(url, directory, rate, args.duration)
            print('| %7d | %5d | %7d | %6d | %8.3f | %10.3f | %10.3f | %14.3f | %5.1f | %13.3f | %6.1f | %7d |' % (
                row['rate'], row['scheduled'], row['samples'], row['failed'], row['missed_pct'], row['lag_p50'],
                row['lag_p99'], row['lat_p50'], row['cpu_pct'], row['cpu_ms_per_sample'], row['rss_mb'],
                row['workers']))
            sys.stdout.flush()
    finally:
        target.close()
        shutil.rmtree(directory, ignore_errors=True)
    print('missed % = slots not probed (no free worker, or skipped after the scheduler fell a whole interval behind)')
    print('plus slots sent more than one interval late; lag = sent - scheduled; CPU = the sampler process only.')


if __name__ == '__main__':
    main()
