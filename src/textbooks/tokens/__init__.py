"""The token pipeline: tokenizers (`tokenizer`), the tokenize step that packs datasets or weighted mixtures into
token shards (`pack`), how a mixture is drawn and written (`mixture`), and token folders (`folder`)."""
