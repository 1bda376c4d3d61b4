# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Bench-only callback: one JSON line per task start and per host result, with wall-clock
timestamps, written to the file named by BENCH_TIMELINE_FILE. bench_fanout.py --profile enables it
and folds the lines into a table of where the wall time goes, per step and per host."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = '''
name: bench_timeline
type: aggregate
short_description: task and per-host result timestamps for bench/bench_fanout.py --profile
description:
  - Writes one JSON line per task start, per host start and per host result.
options:
  path:
    description: The file the lines are appended to.
    env:
      - name: BENCH_TIMELINE_FILE
'''

import json
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'bench_timeline'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._out = None

    def _write(self, **line):
        if self._out is None:
            self.set_options()
            self._out = open(self.get_option('path'), 'a')
        line['at'] = time.time()
        self._out.write(json.dumps(line) + '\n')
        self._out.flush()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write(event='task', task=task.get_name(), uuid=task._uuid, action=task.action)

    def v2_runner_on_start(self, host, task):
        self._write(event='start', task=task.get_name(), uuid=task._uuid, host=host.get_name())

    def _result(self, result, status):
        self._write(event='end', status=status, task=result.task_name, uuid=result._task._uuid,
                    host=result._host.get_name(), delegated=bool(result._task.delegate_to))

    def v2_runner_on_ok(self, result):
        self._result(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._result(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._result(result, 'unreachable')
