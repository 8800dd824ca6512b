"""Synthetic conversations with ground truth, chaos delivery, verification and reports."""
