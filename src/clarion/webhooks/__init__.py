"""Webhook delivery (reference 6): hold-back rules, batching, signing, retries.

`WebhookDispatcher` is the `WebhookSink` the node emits into; `holdback` holds its pure rules.
In a cluster, `redis_queue.RedisWebhookQueue` is the sink instead: a durable queue in Redis, from
which one node at a time delivers through a `WebhookDispatcher` (imported from its module, so an
embedded server never loads the Redis client).
"""

from clarion.webhooks.dispatcher import WebhookDispatcher
from clarion.webhooks.settings import DispatcherSettings, DispatcherStats, QueueStats

__all__ = ["DispatcherSettings", "DispatcherStats", "QueueStats", "WebhookDispatcher"]
