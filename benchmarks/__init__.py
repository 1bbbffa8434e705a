"""Benchmarks: scripts run by hand (`python -m benchmarks.scale`), never collected by pytest."""
