"""The ingest stage: raw code in, one row per file, function or class out, cleaned and exactly deduplicated.

    textbooks ingest --units function class --out runs/x/ingest              # the standard library
    textbooks ingest --source installed --max-files 2000 --out runs/x/ingest  # a sample of site-packages
    textbooks ingest --source dir --path ~/src/project --out runs/x/ingest
    textbooks ingest --source hf --dataset bigcode/the-stack-dedup --data-dir data/python --limit 10000 ...

Each task reads its documents (`textbooks.corpus.sources`), drops whole documents that fail the document
checks (not UTF-8, malformed, too large, generated, not Python), cuts the rest into units
(`textbooks.corpus.units`) and drops units that fail the row checks (`textbooks.corpus.filters`). The reduce
step then removes exact duplicates across the whole corpus (`textbooks.corpus.finish`). Each file is read
and parsed once; parsing is about half the time. Measured on Python 3.11's stdlib (734 files, 12 MB) with
units [function, class]: 5,531 rows in, 4,887 out, 8 s of CPU time.
"""

from __future__ import annotations

from textbooks.corpus import sources
from textbooks.corpus.config import FOLDER_SOURCES, IngestConfig
from textbooks.corpus.document import Document
from textbooks.corpus.filters import SYNTAX_ERROR, document_problem, row_problem
from textbooks.corpus.finish import ShardFix, apply_fix, plan_fixes
from textbooks.corpus.rows import ShardRows
from textbooks.corpus.units import extract_units, parse_python
from textbooks.pipeline.phases import Phases
from textbooks.pipeline.stage import ShardResult, Stage, WorkShard


def ingest_document(document: Document, config: IngestConfig, rows: ShardRows) -> None:
    """Add one document's rows: itself and/or its units, each kept or dropped with a reason."""
    def add(kind: str, name: str | None, text: str, reason: str | None) -> None:
        rows.add(document.source, document.path, kind, name, text, reason, document.extra)

    unit_kinds = [kind for kind in config.units if kind != "file"]
    reason = document.problem or document_problem(document.text, document.size, config)
    tree = None
    if reason is None and (config.python_only or unit_kinds):
        tree = parse_python(document.text)
        if tree is None and config.python_only:
            reason = SYNTAX_ERROR
    if reason is not None:
        add(document.kind, None, document.text, reason)
        return
    if "file" in config.units or tree is None:  # tree is None: not parsed, or not Python and kept whole
        add(document.kind, None, document.text, row_problem(document.text, config))
    if tree is not None:
        for unit in extract_units(document.text, tree, unit_kinds):
            add(unit.kind, unit.name, unit.text, row_problem(unit.code, config))


class IngestStage(Stage):
    name = "ingest"
    Config = IngestConfig
    takes = ()  # it reads what its settings name: the stdlib, site-packages, a folder, files or a hub dataset
    cli_input = None
    has_reduce = True

    config: IngestConfig

    def plan(self) -> list[sources.Task]:
        return sources.plan_tasks(self.config)

    def identity(self) -> dict:
        """The files the settings select (path, size and time of each), or the records' files and datasets."""
        return sources.input_fingerprint(self.config)

    def map(self, task: sources.Task) -> ShardResult:
        rows = ShardRows()
        read = 0
        for document in sources.read_documents(task, self.config):
            ingest_document(document, self.config, rows)
            read += 1
        counter = "files" if self.config.source in FOLDER_SOURCES else "records"
        return ShardResult(kept=rows.kept_table(), dropped=rows.dropped_table(), counters={counter: read})

    def reduce(self, shards: list[WorkShard], phases: Phases) -> list[ShardFix]:
        return plan_fixes(shards, self.config.exact_dedup)

    def apply(self, shard: WorkShard, state: ShardFix) -> ShardResult:
        kept, dropped = apply_fix(shard, state)
        return ShardResult(kept=kept, dropped=dropped)
