"""The Pusher wire layer: pure functions and dataclasses, standard library only, no I/O."""
