"""`python -m captioner.bench`: see captioner/bench/run.py."""

import sys

from captioner.bench.run import main

sys.exit(main())
