"""Benchmark decontamination: n-grams, embedding distance, AST match rate and execution (`step.py`)."""
