"""Distinct types for look-alike identifiers, so the type checker catches a key passed as an id."""

from typing import NewType

AppId = NewType("AppId", str)
AppKey = NewType("AppKey", str)
SocketId = NewType("SocketId", str)
ChannelName = NewType("ChannelName", str)
UserId = NewType("UserId", str)
