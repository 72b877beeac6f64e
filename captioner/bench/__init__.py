"""Measurement tools, not imported by the runtime: the speed and memory benchmark (`python -m captioner.bench`:
run.py, with contenders.py, measure.py, memory.py, targets.py, report.py) and the soak check (soak.py)."""
