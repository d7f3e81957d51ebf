"""Metrics: FID/KID (clean-fid), improved precision/recall, SWD; one file per metric."""
