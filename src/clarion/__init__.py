"""Clarion: a realtime WebSocket server speaking the Pusher Channels protocol v7."""

__version__ = "0.1.0"
