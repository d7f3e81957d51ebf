"""Metrics: FID/KID (clean-fid), improved precision/recall, SWD, structure; one file per metric.

Each metric module registers itself in :mod:`pegan.metrics.registry` (see there for what a
registration holds); ``pegan evaluate``, the workflow plan, the tables, the comparison and
the config schema read the registry. Importing this package does not import torch.
"""

from pegan.metrics.registry import (Metric, Output, Setting, get, metric_set, metrics, outputs,
                                    owner, parse_metric_set, register)

__all__ = ["Metric", "Output", "Setting", "get", "metric_set", "metrics", "outputs", "owner",
           "parse_metric_set", "register"]
