"""Reading inputs: finished datasets, Parquet files, JSONL (plain, .gz, .zst) and Hugging Face datasets.

`plan_parts(spec)` cuts an input into parts, the units of work a stage hands to its executor; `read_part(part)`
yields its records as dicts with `id`, `text`, `source` and any other columns. A malformed JSONL line either
stops the run with the file and line number (`on_error="fail"`) or comes back as a `Malformed` record that the
stage counts and writes to `dropped/` (`on_error="skip"`).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from textbooks.errors import UserError
from textbooks.store import data

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
HF_PREFIX = "hf:"

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class Part:
    """One unit of work over an input: a dataset shard, a file, or a slice of a Hugging Face dataset."""

    kind: Literal["shard", "parquet", "jsonl", "hf"]
    path: str
    index: int = 0
    count: int = 1
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Malformed:
    """A record that could not be read, kept for the audit trail in `dropped/`."""

    id: str
    text: str
    source: str
    reason: str


def _has_suffix(path: str, suffixes: tuple[str, ...]) -> bool:
    return path.lower().endswith(suffixes)


def _is_saved_hf_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def plan_parts(
    spec: str,
    *,
    hf_split: str = "train",
    hf_config: str | None = None,
    hf_data_dir: str | None = None,
    streaming: bool = True,
    rows_per_part: int = 10_000,
) -> list[Part]:
    """Cut the input named by `spec` into parts.

    `spec` is a finished dataset folder, a Parquet/JSONL file or glob, a folder of such files, a dataset saved
    with `datasets.save_to_disk`, or `hf:NAME` for a dataset on the Hugging Face hub (or a local folder in hub
    layout).
    """
    if spec.startswith(HF_PREFIX):
        return _plan_hf(spec[len(HF_PREFIX):], hf_split, hf_config, hf_data_dir, streaming, rows_per_part)
    path = Path(spec)
    if path.is_dir():
        if data.is_complete(path):
            return [Part("shard", str(shard)) for shard in data.shard_paths(path)]
        if _is_saved_hf_dataset(path):
            return _plan_hf(spec, hf_split, hf_config, hf_data_dir, False, rows_per_part)
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _readable(str(p))
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            if any(path.glob(data.SHARD_GLOB)):
                raise UserError(f"{path}: dataset folder without a {data.MARKER} marker: the stage that writes it "
                                "did not finish; run it again")
            raise UserError(f"{path}: no Parquet or JSONL files in this folder")
    elif any(ch in spec for ch in "*?["):
        files = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise UserError(f"{spec}: no file matches this pattern")
    elif path.is_file():
        files = [spec]
    else:
        raise UserError(f"{spec}: no such file or folder (for a Hugging Face hub dataset write hf:{spec})")
    parts = []
    for name in files:
        if not _readable(name):
            raise UserError(f"{name}: unknown input format; expected {', '.join(JSONL_SUFFIXES + PARQUET_SUFFIXES)}")
        parts.append(Part("parquet" if _has_suffix(name, PARQUET_SUFFIXES) else "jsonl", name))
    return parts


def _readable(name: str) -> bool:
    return _has_suffix(name, JSONL_SUFFIXES + PARQUET_SUFFIXES)


def _load_hf(path: str, split: str, config: str | None, data_dir: str | None, streaming: bool):
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise UserError("reading Hugging Face datasets needs the `datasets` package: pip install datasets") from None
    if _is_saved_hf_dataset(Path(path)):
        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise UserError(f"{path}: no split {split!r}; it has {', '.join(loaded)}")
            loaded = loaded[split]
        return loaded
    from textbooks.store import hub

    if not Path(path).exists():
        hub.prepare()
    try:
        return datasets.load_dataset(path, name=config, data_dir=data_dir, split=split, streaming=streaming)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(f"hf:{path}: cannot load this Hugging Face dataset ({error})") from None
    except Exception as error:  # network errors, hub errors: all are the input's fault here
        raise UserError(f"hf:{path}: cannot load this Hugging Face dataset ({type(error).__name__}: {error}); "
                        "check the name, the split and your network or HF_HUB_OFFLINE setting") from None


def _plan_hf(path: str, split: str, config: str | None, data_dir: str | None, streaming: bool,
             rows_per_part: int) -> list[Part]:
    options = {"split": split, "config": config, "data_dir": data_dir, "streaming": streaming}
    loaded = _load_hf(path, split, config, data_dir, streaming)
    if hasattr(loaded, "__len__"):
        rows = len(loaded)
        count = max(1, -(-rows // rows_per_part))
        return [Part("hf", path, index, count, {**options, "streaming": False, "rows_per_part": rows_per_part})
                for index in range(count)]
    count = getattr(loaded, "num_shards", None) or getattr(loaded, "n_shards", 1)
    return [Part("hf", path, index, count, options) for index in range(count)]


def _open_text(path: str) -> io.TextIOBase:
    lower = path.lower()
    if lower.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if lower.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")
        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), encoding="utf-8")
    return open(path, encoding="utf-8")


def _record(raw: dict, default_id: str, source: str, text_column: str, id_column: str, where: str) -> dict:
    if text_column not in raw:
        raise UserError(f"{where}: record has no {text_column!r} field (it has {', '.join(map(str, raw))}); "
                        "set text_column to the field that holds the text")
    text = raw[text_column]
    if not isinstance(text, str):
        raise UserError(f"{where}: field {text_column!r} is {type(text).__name__}, expected a string")
    record = {key: value for key, value in raw.items() if key not in (text_column, id_column, "source")}
    record["id"] = str(raw[id_column]) if raw.get(id_column) is not None else default_id
    record["text"] = text
    record["source"] = str(raw.get("source") or source)
    return record


def read_part(
    part: Part,
    *,
    text_column: str = "text",
    id_column: str = "id",
    source: str | None = None,
    label: str | None = None,
    on_error: OnError = "fail",
) -> Iterator[dict | Malformed]:
    """Yield the records of one part in a fixed order; see the module docstring for errors.

    `source` fills the `source` column of records that have none (default: the file's or dataset's name).
    A record without its own id is named by its position, `{label}:{line or row}` (default label: source).
    """
    if part.kind == "shard":
        yield from data.read_shard(Path(part.path)).to_pylist()
        return
    default_source = stem(part.path) if part.kind in ("parquet", "jsonl") else part.path.rstrip("/").split("/")[-1]
    source = source or default_source
    names = _Names(source, label or source, text_column, id_column)
    if part.kind == "parquet":
        yield from _read_parquet(part.path, names)
    elif part.kind == "jsonl":
        yield from _read_jsonl(part.path, names, on_error)
    else:
        yield from _read_hf(part, names)


@dataclass(frozen=True)
class _Names:
    """How records are named: the default source, the label of positions, and the text and id fields."""

    source: str
    label: str
    text_column: str
    id_column: str

    def record(self, raw: dict, position: int | str, where: str) -> dict:
        return _record(raw, f"{self.label}:{position}", self.source, self.text_column, self.id_column, where)


def stem(path: str) -> str:
    """The file name without its input suffixes: `data.jsonl.gz` -> `data`."""
    name = Path(path).name
    for suffix in sorted(JSONL_SUFFIXES + PARQUET_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_parquet(path: str, names: _Names) -> Iterator[dict]:
    try:
        reader = pq.ParquetFile(path)
        row = 0
        for batch in reader.iter_batches(batch_size=4096):
            for raw in batch.to_pylist():
                yield names.record(raw, row, f"{path}: row {row}")
                row += 1
    except UserError:
        raise
    except Exception as error:
        raise UserError(f"{path}: not a readable Parquet file ({error}); re-create it or remove it") from None


def _read_jsonl(path: str, names: _Names, on_error: OnError) -> Iterator[dict | Malformed]:
    try:
        handle = _open_text(path)
        with handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    raw = json.loads(line)
                    if not isinstance(raw, dict):
                        raise ValueError(f"a JSON {type(raw).__name__}, not an object")
                    yield names.record(raw, lineno, where)
                except (ValueError, UserError) as error:
                    if on_error == "fail":
                        message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
                        raise UserError(f"{where}: malformed record ({message}); fix the line or set "
                                        "on_error: skip to skip and count such lines") from None
                    yield Malformed(f"{names.label}:{lineno}", line.rstrip("\n"), names.source, "malformed_input")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read this file ({error})") from None
    except Exception as error:
        if type(error).__module__.startswith("zstd"):
            raise UserError(f"{path}: corrupt zstd stream ({error})") from None
        raise


def _read_hf(part: Part, names: _Names) -> Iterator[dict]:
    options = part.options
    loaded = _load_hf(part.path, options["split"], options.get("config"), options.get("data_dir"),
                      options.get("streaming", True))
    if hasattr(loaded, "__len__"):
        size = options["rows_per_part"]
        start = part.index * size
        rows = loaded.select(range(start, min(start + size, len(loaded))))
        offsets = range(start, start + len(rows))
    else:
        rows = loaded.shard(num_shards=part.count, index=part.index) if part.count > 1 else loaded
        offsets = None
    for position, raw in enumerate(rows):
        row = offsets[position] if offsets is not None else f"{part.index}-{position}"
        yield names.record(dict(raw), row, f"hf:{part.path} row {row}")


def fingerprint(part: Part) -> dict:
    """What identifies a part's content cheaply: path with size and mtime, or the dataset's own marker."""
    path = Path(part.path)
    if part.kind == "shard":
        marker = data.read_marker(path.parent) or {}
        return {"shard": path.name, "dataset": marker.get("fingerprint")}
    if path.exists():
        stat = path.stat()
        return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "index": part.index, "count": part.count}
    return {"hf": part.path, "index": part.index, "count": part.count, **part.options}


def read_table(part: Part, columns: list[str] | None = None) -> pa.Table:
    """A part's rows as one table in read order; a dataset shard keeps its own Arrow types."""
    if part.kind == "shard":
        table = data.read_shard(Path(part.path))
        data.check_columns(table, part.path)
        return table.select(columns) if columns else table
    records = list(read_part(part))
    names = list(dict.fromkeys(key for record in records for key in record)) or list(data.REQUIRED_COLUMNS)
    try:
        table = pa.table({name: [record.get(name) for record in records] for name in names})
    except pa.ArrowException as error:
        raise UserError(f"{part.path}: a column holds values of different types ({error}); give each field "
                        "one type") from None
    return table.select(columns) if columns else table
