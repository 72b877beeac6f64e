"""Measurement tools: the speed and memory benchmark, the soak check. Not imported by the runtime."""
