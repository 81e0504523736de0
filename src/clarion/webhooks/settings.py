"""The dispatcher's settings and counters."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    """Timings in seconds. Defaults follow Pusher where it says (reference 6)."""

    # How long the first event of a batch waits for others to share its request.
    batch_window_s: float = 0.25
    # Events per request at most.
    batch_max: int = 50
    # channel_vacated / member_removed wait this long for their cancelling event ("up to 3 s").
    holdback_s: float = 3.0
    # Back-off between tries of a failed request: doubles from `retry_initial_s` up to
    # `retry_max_s`; after `retry_period_s` since the first try the batch is dropped
    # (Pusher: "exponential back-off for 5 minutes").
    retry_initial_s: float = 1.0
    retry_max_s: float = 60.0
    retry_period_s: float = 300.0
    # Total time for one request, connect to last byte of the response.
    timeout_s: float = 10.0
    # Events queued or in flight over all endpoints; past it new ones are dropped and counted.
    queue_max: int = 10000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"webhook {f.name} must be positive, got {value!r}")


@dataclass(slots=True)
class DispatcherStats:
    """Counters in events unless named otherwise; `pending` and `held` are current levels."""

    # Event copies accepted into an endpoint's queue (one per endpoint that wants it).
    queued: int = 0
    delivered_events: int = 0
    delivered_requests: int = 0
    failed_attempts: int = 0
    dropped_overflow: int = 0
    # Given up after `retry_period_s` of failures.
    dropped_expired: int = 0
    # Emitted after `close()` began.
    dropped_closed: int = 0
    # Still queued when `close()` ran out of time.
    abandoned: int = 0
    # Queued or in flight now.
    pending: int = 0
    # In the hold-back now.
    held: int = 0


@dataclass(slots=True)
class QueueStats:
    """The Redis webhook queue's counters (redis_queue.py), in events unless named otherwise;
    `buffered` and `leader` are current levels."""

    # Emitting side, every node: waiting in this node's buffer for Redis.
    buffered: int = 0
    # Appended to the Redis queue.
    pushed: int = 0
    # Tries to append that failed (Redis unreachable or slow); the events stayed buffered.
    push_failures: int = 0
    # The buffer was full (`queue_max`, Redis unreachable for long).
    dropped_overflow: int = 0
    # Redis already held `backlog_max` events waiting for a leader.
    dropped_backlog: int = 0
    # Emitted after `close()` began.
    dropped_closed: int = 0
    # Still buffered when `close()` ran out of time (Redis unreachable).
    abandoned: int = 0
    # Delivering side: whether this node is the webhook leader now, and how often it became one.
    leader: bool = False
    terms: int = 0
    # Entries a previous leader left in flight, put back in the queue when this node took over.
    recovered: int = 0
    # Entries taken from the queue, and removed from flight once settled.
    taken: int = 0
    acked: int = 0
    # Entries dropped unread: not a webhook record, or for an app the app store does not know.
    unreadable: int = 0
    # What this node's dispatchers did with the events they delivered, over all its terms.
    delivery: DispatcherStats = field(default_factory=DispatcherStats)
