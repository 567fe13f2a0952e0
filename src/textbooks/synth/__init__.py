"""Synthetic textbooks and exercises (the paper's sections 1(b)-(c)): the seeded sampler of what to write about
(sampler.py, taxonomy.yaml), verification by execution (verify.py), mined exercises (mine.py), and the synth
steps."""
