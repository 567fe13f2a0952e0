"""The paper's first dataset, filtered code: `annotate` (an LLM judge, or the offline rubric, on a sample),
`embed`, `classify` (a classifier on the embeddings, fitted on the annotated sample) and `filter`."""
