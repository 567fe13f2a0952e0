"""The ingest stage's settings: one pydantic model whose fields are the recipe keys and the CLI flags."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from textbooks.corpus.globs import DEFAULT_EXCLUDE
from textbooks.pipeline.step import StepConfig

Source = Literal["stdlib", "installed", "dir", "files", "hf"]
UnitKind = Literal["file", "function", "class"]
FOLDER_SOURCES: tuple[Source, ...] = ("stdlib", "installed", "dir")  # textbooks.corpus.folders reads them

# Which settings mean something for which source; setting one for another source is refused in `plan`.
SOURCE_FIELDS: dict[str, tuple[Source, ...]] = {
    "path": ("dir", "files"),
    "dataset": ("hf",),
    "split": ("hf",),
    "hf_config": ("hf",),
    "data_dir": ("hf",),
    "streaming": ("hf",),
    "text_column": ("files", "hf"),
    "id_column": ("files", "hf"),
    "on_error": ("files",),
    "extra_columns": ("files", "hf"),
    "include": FOLDER_SOURCES,
    "exclude": FOLDER_SOURCES,
    "files_per_task": FOLDER_SOURCES,
    "max_files": ("installed",),
}


class IngestConfig(StepConfig):
    """Where the raw code comes from, how it is cut into units, and the cleaning filters applied to it."""

    source: Source = Field("stdlib", description=(
        "Where the code comes from: stdlib (the .py files of this interpreter's standard library, offline), "
        "installed (the .py files of this environment's installed packages, its site-packages), dir (a local "
        "folder), files (JSONL/Parquet files) or hf (a Hugging Face dataset)."))
    path: str | None = Field(None, description=(
        "source dir: the folder to read. source files: a JSONL (.gz/.zst) or Parquet file, a glob, or a "
        "folder of such files."))
    dataset: str | None = Field(None, description=(
        "source hf: a dataset on the hub (bigcode/the-stack-dedup) or a local dataset folder."))
    split: str = Field("train", description="source hf: the split to read.")
    hf_config: str | None = Field(None, description="source hf: the dataset's configuration name, if any.")
    data_dir: str | None = Field(None, description=(
        "source hf: a folder inside the dataset, e.g. data/python for The Stack."))
    streaming: bool = Field(True, description=(
        "source hf: stream the dataset instead of downloading it first (local datasets are read directly)."))
    text_column: str | None = Field(None, description=(
        "sources files and hf: the column holding the code (default: content for hf, The Stack's column; "
        "text for files)."))
    id_column: str = Field("id", description=(
        "sources files and hf: the column holding a record's id; records without one are named by position."))
    include: list[str] = Field(["**/*.py"], description=(
        "sources stdlib, installed and dir: globs of the files to read, relative to the folder (** spans "
        "folders)."))
    exclude: list[str] = Field(DEFAULT_EXCLUDE, description=(
        "sources stdlib, installed and dir: globs of files to leave out; the default leaves out "
        "site-packages, dist-packages and test suites (test/, tests/, idle_test/), except for source "
        "installed, where it is empty (installed never reads __pycache__)."))
    limit: int | None = Field(None, ge=1, description=(
        "Read at most this many files or records (the first ones in sorted order), for quick runs."))
    max_files: int | None = Field(None, ge=1, description=(
        "source installed: read at most this many files, shared out over the packages (each an equal share, "
        "taken at even steps through its sorted files), the same ones on every run; instead of limit."))
    files_per_task: int = Field(40, ge=1, description=(
        "sources stdlib, installed and dir: files per task (the stdlib makes about 20 tasks); files and hf "
        "make one task per input file or dataset slice."))
    source_name: str | None = Field(None, description=(
        "Value of the `source` column and prefix of every id (default: stdlib, installed, the folder's name, "
        "the file's stem, or the dataset's name)."))
    units: list[UnitKind] = Field(["file"], min_length=1, description=(
        "What becomes a row: whole files, and/or top-level functions and classes (with their decorators, "
        "docstrings and comments, after the module's imports that they use)."))
    python_only: bool = Field(True, description=(
        "Drop text that does not parse as Python (syntax_error); when false, keep it whole."))
    max_bytes: int = Field(1_000_000, ge=1, description=(
        "Drop files and records larger than this, in UTF-8 bytes (too_large)."))
    max_line_length: int = Field(1000, ge=1, description=(
        "Drop rows with a longer line, in characters (long_lines)."))
    max_mean_line_length: float = Field(100, gt=0, description=(
        "Drop rows whose mean line length is above this (long_mean_line): data tables, minified code."))
    min_alnum_fraction: float = Field(0.25, ge=0, le=1, description=(
        "Drop rows with a smaller fraction of letters and digits (low_alnum): binary blobs, ASCII art."))
    drop_autogenerated: bool = Field(True, description=(
        "Drop files whose first 5 lines say they were generated (\"auto-generated\", \"do not edit\"...)."))
    min_lines: int = Field(3, ge=0, description="Drop rows with fewer lines (too_short).")
    exact_dedup: bool = Field(True, description=(
        "Drop exact duplicates (after normalising white space) across the whole corpus, keeping the first "
        "(exact_duplicate, with duplicate_of naming the row kept)."))
    extra_columns: bool = Field(True, description=(
        "sources files and hf: keep the records' other columns (a license, a repository name...) on every row "
        "made from them, renamed record_NAME where a name is one of ours (path, kind...); false drops them."))
    on_error: Literal["fail", "skip"] = Field("fail", description=(
        "source files: a malformed JSONL line stops the run (fail) or is dropped as malformed_input (skip)."))

    @model_validator(mode="before")
    @classmethod
    def _installed_reads_site_packages(cls, values: Any) -> Any:
        """The default exclude leaves out site-packages and tests, which source installed is made of."""
        if isinstance(values, dict) and values.get("source") == "installed" and "exclude" not in values:
            return {**values, "exclude": []}
        return values

    def column_of_text(self) -> str:
        """The text column for record sources: The Stack names it `content`, our JSONL/Parquet `text`."""
        return self.text_column or ("content" if self.source == "hf" else "text")
