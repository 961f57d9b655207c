"""Measuring: strategies side by side on the same inputs, fidelity, the report (pure), the tour's lessons."""
