"""Converters from other implementations' checkpoints to pegan snapshots."""
