"""Scorers and wrappers: frames or stored embeddings in, numbers or text out, on one device. Per-video
scorers of a shard (motion, clarity) implement ``base.VideoScorer``."""
