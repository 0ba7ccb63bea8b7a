"""``dagster-daemon`` for the tests: the backfill daemon passes every second instead of every 30.

Dagster's backfill daemon sleeps a fixed 30 s between passes (``dagster._daemon.controller``'s
``DEFAULT_DAEMON_INTERVAL_SECONDS``, not configurable), and a run command waits for one pass at each
change of partitioning along the graph: minutes on the tests' tiny sources, where the runs take
seconds. The test suite points ``OPENVID_DAGSTER_DAEMON`` here (conftest.py); this is the one place it
uses Dagster internals to do so. Everything else is the real daemon.
"""

import sys

import dagster._daemon.controller as controller
from dagster._daemon.cli import main

PASS_EVERY_S = 1

if __name__ == "__main__":
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = PASS_EVERY_S
    sys.argv[0] = "dagster-daemon"
    sys.exit(main())
