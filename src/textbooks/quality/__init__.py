"""The paper's first dataset, filtered code (section 1(a)): a judge labels a sample (`annotate`: an LLM, or
the offline rubric), a classifier learns the labels on embeddings (`embed`, `classify`), and a filter keeps
the rows it scores high (`filter`).

    textbooks annotate --input runs/x/ingest --out runs/x/annotate --sample-size 1000
    textbooks embed    --input runs/x/ingest --out runs/x/embed --embedder hashing
    textbooks classify --input runs/x/ingest --out runs/x/classify --labels runs/x/annotate --embeddings runs/x/embed
    textbooks filter   --input runs/x/classify --out runs/x/filter --fraction 0.2

`rubric`, `prompts` and `parse` are the judges' rules, prompt and answer reading; `agreement` compares two
judges; `embedders` turns text into vectors (`hashing`, `causal_lm`, `sentence`), `vectors` is the embeddings
dataset, `classifiers` fits and measures the scikit-learn models, and `annotate`, `embed` (settings in
`config`), `classify` and `filter` are the steps.
"""
