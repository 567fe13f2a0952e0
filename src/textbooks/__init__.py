"""textbooks: the system of "Textbooks Are All You Need" (phi-1) as a toolkit.

Raw code becomes textbook-quality training data, synthetic textbooks and exercises are written by any LLM,
benchmark contamination is removed, phi-1 models are trained and evaluated. See README.md for a tour.
"""

__version__ = "0.1.0"
