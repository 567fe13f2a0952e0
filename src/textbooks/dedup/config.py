"""Settings of `textbooks dedup`: the recipe keys and, with `-` for `_`, the command's flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from textbooks.pipeline.step import StepConfig


class DedupConfig(StepConfig):
    threshold: float = Field(
        0.7, gt=0.0, lt=1.0,
        description="Jaccard similarity of two documents' shingle sets at which they count as "
                    "near-duplicates; it sets the LSH bands and rows, and the cut-off of verify.")
    num_perm: int = Field(
        128, ge=2, le=1024,
        description="MinHash permutations per document: longer signatures are more exact and slower.")
    ngram: int = Field(5, ge=1, description="Tokens per shingle; a shorter document is one shingle.")
    seed: int = Field(1, ge=0, lt=2**32, description="Seed of the MinHash permutations; 1 is datasketch's.")
    verify: bool = Field(
        True,
        description="Check every LSH candidate pair by the exact Jaccard similarity of its shingle sets "
                    "before joining it, so that no LSH false positive removes a row.")
    bands: int | None = Field(
        None, ge=1,
        description="LSH bands; default: what datasketch.MinHashLSH picks for threshold and num_perm "
                    "(with only rows set: num_perm // rows).")
    rows: int | None = Field(
        None, ge=1, validate_default=True,
        description="Signature rows per LSH band; default: what datasketch.MinHashLSH picks for threshold "
                    "and num_perm (with only bands set: num_perm // bands).")
    normalize: Literal["code", "text"] = Field(
        "code",
        description="code: Python tokens without comments or layout, locally bound names renamed by first "
                    "appearance (text that is not Python: plain tokens); text: lower-cased words.")
    shuffle: Literal["auto", "memory", "sharded"] = Field(
        "auto",
        description="Where the clusters are found (the result is the same): memory: every row's band keys and "
                    "shingles in this process; sharded: band keys grouped by hash bucket, candidates verified and "
                    "clusters joined in tasks on the executor, this process holding no per-row state; auto: "
                    "sharded from 1,000,000 rows.")
    partitions: int | None = Field(
        None, ge=1, le=64,
        description="sharded: tasks that group exact hashes and band keys (default: one per 100,000 rows, at "
                    "most 64, the hash buckets the map writes).")

    @field_validator("bands")
    @classmethod
    def _bands_fit(cls, bands: int | None, info: ValidationInfo) -> int | None:
        num_perm = info.data.get("num_perm")
        if bands and num_perm and bands > num_perm:
            raise ValueError(f"at most num_perm ({num_perm}) bands of at least one row each: lower it or raise "
                             "num_perm")
        return bands

    @field_validator("rows")
    @classmethod
    def _rows_fit(cls, rows: int | None, info: ValidationInfo) -> int | None:
        num_perm, bands = info.data.get("num_perm"), info.data.get("bands")
        if rows and num_perm and rows > num_perm:
            raise ValueError(f"at most num_perm ({num_perm}) rows per band: lower it or raise num_perm")
        if rows and bands and num_perm and bands * rows > num_perm:
            raise ValueError(f"bands x rows ({bands} x {rows}) is more than num_perm ({num_perm}): lower them "
                             "or raise num_perm")
        return rows

    def lsh_shape(self) -> tuple[int, int]:
        """(bands, rows) of the LSH index: the settings, or what datasketch derives from the threshold."""
        from textbooks.dedup.minhash import optimal_shape

        given = given_shape(self.num_perm, self.bands, self.rows)
        return given or optimal_shape(self.threshold, self.num_perm)


def given_shape(num_perm: int, bands: int | None, rows: int | None) -> tuple[int, int] | None:
    """(bands, rows) from the settings, the missing one filled in from num_perm; None when neither is set."""
    if bands and rows:
        return bands, rows
    if bands:
        return bands, num_perm // bands
    if rows:
        return num_perm // rows, rows
    return None
