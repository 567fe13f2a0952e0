"""Quality filtering, the paper's section 2.1: a judge labels a sample, a classifier learns it, a filter keeps
the rows it scores high.

    textbooks embed    --input runs/x/ingest --out runs/x/embed --embedder hashing
    textbooks classify --input runs/x/ingest --out runs/x/classify --labels runs/x/annotate --embeddings runs/x/embed
    textbooks filter   --input runs/x/classify --out runs/x/filter --fraction 0.2

`embedders` turns text into vectors (`hashing`, `causal_lm`, `sentence`), `vectors` is the embeddings dataset,
`classifiers` fits and measures the scikit-learn models, and `embed` (settings in `config`), `classify`
and `filter` are the steps.
"""
