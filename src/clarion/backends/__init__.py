"""Port implementations: `memory` (embedded default)."""
