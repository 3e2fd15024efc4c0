"""Representations, similarity (pure maths), drift, weight space."""
