"""ownbench: private evaluation sets from your own logs, a judge calibrated against humans, defensible rankings."""
__version__ = "0.1.0"
