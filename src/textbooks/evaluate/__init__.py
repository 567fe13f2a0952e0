"""Evaluation: benchmark problems, EvalPlus-style output comparison and the pass@k estimator."""
