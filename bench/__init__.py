"""Benchmarks for the SPEC 12 targets; each prints its figures and writes JSON."""
