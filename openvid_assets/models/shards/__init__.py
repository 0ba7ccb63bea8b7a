"""One shard's videos through the scorers: decode-ahead threads, failure rows, rows reused by key; and the
schemas of the tables those steps write (``tables``: no torch)."""
