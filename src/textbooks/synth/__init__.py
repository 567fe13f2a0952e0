"""Synthetic data: textbooks and exercises (LLM-written or mined from code), and their verification by execution."""
