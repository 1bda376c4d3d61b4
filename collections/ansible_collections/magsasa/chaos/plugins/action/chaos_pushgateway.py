# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Push the run's metrics to the Pushgateway from a task, when the chaos_report callback's
``pushgateway_required`` is set, so a failed push fails that task (and the run) instead of the
callback ending the process.

The settings are the callback's own options (environment, ``ansible.cfg``), read through the
configuration manager; the metrics come from plugin_utils/_prometheus.py, as the callback's do.
The result carries ``chaos_pushgateway`` for the callback: it then neither pushes again nor
reports the push twice, and its textfile gets the same run start and end times.
"""

import time

from ansible.plugins.action import ActionBase
from ansible.plugins.loader import callback_loader

from ansible_collections.magsasa.chaos.plugins.plugin_utils._prometheus import (
    EXPORT_OPTIONS, PrometheusExport, run_start, safe_url,
)

CALLBACK = 'magsasa.chaos.chaos_report'
RESULT_KEY = 'chaos_pushgateway'


def callback_options():
    """The chaos_report callback's export options as configured (env, ansible.cfg, defaults)."""
    callback = callback_loader.get(CALLBACK)  # loading it registers its option definitions
    callback.set_options()
    return dict((name, callback.get_option(name)) for name in EXPORT_OPTIONS)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(('records',))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=dict(
            records=dict(type='list', elements='raw', required=True),
        ))
        options = callback_options()
        url = options.get('pushgateway_url')
        result['changed'] = False
        if not url or not options.get('pushgateway_required'):
            result.update(skipped=True, msg='pushgateway_required is not set: the chaos_report callback pushes at the '
                                            'end of the run, if pushgateway_url is set')
            return result
        if self._task.check_mode:
            result.update(skipped=True, msg='not pushed under --check')
            return result
        records = [r for r in args['records'] if isinstance(r, dict)]
        ended = time.time()
        started = run_start(records, ended)
        push_only = dict(options, prometheus_textfile=None)
        messages, failed = PrometheusExport(push_only).export(records, started, ended)
        texts = [text for dummy_level, text in messages]
        for level, text in messages:
            if level != 'info' and not (failed and text == texts[-1]):
                result.setdefault('warnings', []).append(text)
        result[RESULT_KEY] = {'url': safe_url(url), 'pushed': not failed, 'started': started, 'ended': ended,
                              'message': texts[-1] if texts else ''}
        if failed:
            result.update(failed=True, msg='pushgateway_required is set and the push of the run\'s metrics failed: %s'
                                           % (texts[-1] if texts else 'no push to %s' % safe_url(url)))
        else:
            result['msg'] = texts[-1]
        return result
