# -*- coding: utf-8 -*-
# Copyright: (c) 2026, magsasa.chaos maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Team notifications for playbooks: thin wrappers over plugin_utils/_notify.py."""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.magsasa.chaos.plugins.plugin_utils._notify import (
    describe_url, destinations, payload, scrub, start_event,
)


def notify_destinations(slack_url, webhook_url='', webhook_format='generic'):
    """The configured webhooks as a list of {name, flavour, url}."""
    try:
        return destinations(slack_url, webhook_url, webhook_format)
    except ValueError as exc:
        raise AnsibleFilterError('magsasa.chaos.notify_destinations: %s' % to_native(exc))


def notify_start_payload(plan, flavour):
    """The body of the before-the-run notification for one webhook flavour."""
    if not isinstance(plan, dict):
        raise AnsibleFilterError('magsasa.chaos.notify_start_payload: the plan must be a dict, got %s'
                                 % type(plan).__name__)
    try:
        return payload(start_event(plan), flavour)
    except ValueError as exc:
        raise AnsibleFilterError('magsasa.chaos.notify_start_payload: %s' % to_native(exc))


def notify_undelivered(results):
    """From the registered loop results of the webhook posts: the ones that were not delivered,
    as {name, where, status, error, text} with every webhook URL scrubbed out of the error."""
    undelivered = []
    items = [r for r in (results or {}).get('results') or [] if isinstance(r, dict)]
    urls = [str((r.get('chaos_notify_destination') or {}).get('url') or '') for r in items]
    for result in items:
        status = result.get('status')
        if isinstance(status, int) and 200 <= status < 300:
            continue
        destination = result.get('chaos_notify_destination') or {}
        item = {
            'name': destination.get('name'),
            'where': describe_url(destination.get('url')),
            'status': status if isinstance(status, int) else None,
            'error': scrub(result.get('msg') or 'no response', urls),
        }
        http = 'HTTP %s, ' % status if isinstance(status, int) and status > 0 else ''
        item['text'] = '%s webhook at %s: %s%s' % (item['name'], item['where'], http, item['error'])
        undelivered.append(item)
    return undelivered


class FilterModule(object):
    """Notification filters."""

    def filters(self):
        return {
            'notify_destinations': notify_destinations,
            'notify_start_payload': notify_start_payload,
            'notify_undelivered': notify_undelivered,
        }
