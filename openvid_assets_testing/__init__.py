"""Helpers shared by the tests (``openvid_assets_tests``) and the benchmarks (``bench/``); not part of the product.

Neither side imports the other: what both need lives here. ``pipeline`` stores a recipe and runs the graph
in-process; ``harness`` runs the pipeline for real, breaks it and judges what it left; ``s3server`` and
``pgserver`` start a local S3 API and a PostgreSQL server (and are the test suite's pytest plugins for them);
``selection_tables`` writes the pipeline's tables at scale without running it, and ``global_steps`` times the
global steps over them in a fresh process; ``videos.opener`` opens a local folder's videos for the scoring
functions; ``ports.free_port`` finds a port for a local server.
The wheel does not ship this package (pyproject.toml builds ``openvid_assets`` only).
"""
