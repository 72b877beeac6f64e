"""Measurement tools, not imported by the runtime: the speed and memory benchmark (`python -m captioner.bench`:
run.py, with contenders.py, peers.py, measure.py, memory.py, targets.py, report.py), the cold start of the
CLI (coldstart.py) and the soak check (soak.py)."""
