"""Evaluation: completers, the judge, EvalPlus-style output comparison, pass@k, solution loss, LLM grading and the
eval step; the problems come from `textbooks.benchmarks`."""
