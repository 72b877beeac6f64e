"""`python -m captioner.bench`: see captioner/bench/benchmark.py."""

import sys

from captioner.bench.benchmark import main

sys.exit(main())
