from __future__ import annotations

from clarion.webhooks.throttle import LogThrottle


def test_first_always_passes_then_once_per_interval() -> None:
    now = [100.0]
    throttle = LogThrottle(1.0, clock=lambda: now[0])
    assert throttle.ready()
    assert not throttle.ready()
    now[0] = 100.99
    assert not throttle.ready()
    now[0] = 101.0
    assert throttle.ready()
    assert not throttle.ready()
