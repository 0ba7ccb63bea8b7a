"""Pure video I/O: source listing, probing, frame sampling, cut detection, clip writing.

Never imports Dagster.
"""
