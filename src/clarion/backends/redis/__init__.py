"""Redis adapters: the cluster implementations of the ports (docs/cluster.md)."""
