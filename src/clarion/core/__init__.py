"""Pure domain state: apps, sessions, this node's subscription index, presence rosters."""
