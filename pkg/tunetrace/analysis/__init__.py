"""Representations, similarity (pure maths), drift, weight-space maths, plots."""
