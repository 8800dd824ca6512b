"""Synthetic conversations with ground truth, chaos delivery, verification and reports.

A shell, one folder per phase: `generate`, `send`, `verify`, `run`.
"""
