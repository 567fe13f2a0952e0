"""Raw code in: sources (stdlib, folders, JSONL/Parquet, Hugging Face), units, cleaning filters, ingest."""
