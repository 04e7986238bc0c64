"""`python -m koprogo_iot.cli`: the same as `koprogo-iot` (worker processes are started this way)."""

import sys

from koprogo_iot.cli import main

sys.exit(main())
