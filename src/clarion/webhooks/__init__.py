"""Webhook delivery (reference 6): hold-back rules, batching, signing, retries.

`WebhookDispatcher` is the `WebhookSink` the node emits into; `holdback` holds its pure rules.
"""

from clarion.webhooks.dispatcher import WebhookDispatcher
from clarion.webhooks.settings import DispatcherSettings, DispatcherStats

__all__ = ["DispatcherSettings", "DispatcherStats", "WebhookDispatcher"]
