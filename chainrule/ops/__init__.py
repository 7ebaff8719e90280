"""Differentiable functions on arrays, one class per op, grouped by topic."""
