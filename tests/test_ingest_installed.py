"""Ingest's installed source: the running environment's site-packages, a file budget spread over packages."""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

import pytest

from textbooks.cli import main
from textbooks.corpus import installed
from textbooks.corpus.config import IngestConfig
from textbooks.corpus.ingest import IngestStage
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.store import data


def run(argv: list[str], out: Path) -> list[dict]:
    """Every row, kept then dropped, of `textbooks ingest ARGV --out OUT`."""
    assert main(["ingest", *argv, "--workers", "1", "--out", str(out)]) == 0
    rows = data.read_dataset(out).to_pylist()
    return rows + (data.read_dataset(out / data.DROPPED).to_pylist() if data.is_complete(out / data.DROPPED) else [])


def packages_on_disk() -> set[str]:
    """The top-level packages with a .py file in the environment's folders, listed apart from the source."""
    found = set()
    for root in {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [name for name in subfolders if name != "__pycache__"]
            relfolder = Path(folder).relative_to(root).as_posix()
            found |= {installed.package_of(name if relfolder == "." else f"{relfolder}/{name}")
                      for name in names if name.endswith(".py")}
    return found


def test_a_budget_of_files_from_every_installed_package_the_same_on_every_run(tmp_path, capsys):
    argv = ["--source", "installed", "--max-files", "200", "--units", "file"]
    rows = run(argv, tmp_path / "one")
    assert data.read_stats(tmp_path / "one")["counters"] == {"files": 200} and len(rows) == 200
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == 200 and all(row_id == f"installed:{row['path']}" for row_id, row in zip(ids, rows))
    assert {row["source"] for row in rows} == {"installed"}
    assert all(row["package"] == installed.package_of(row["path"]) for row in rows)
    packages = {row["package"] for row in rows}
    assert len(packages) >= 3 and {"numpy", "pyarrow", "pydantic"} <= packages | {
        name for name in ("numpy", "pyarrow", "pydantic") if importlib.util.find_spec(name) is None}
    on_disk = packages_on_disk()
    if len(on_disk) <= 200:
        assert packages == on_disk  # every package gets a file when the budget allows
    roots = installed.roots()
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert roots and stdlib not in roots and not packages & set(sys.stdlib_module_names)
    for row in rows:
        file = next(root / row["path"] for root in roots if (root / row["path"]).is_file())
        assert "__pycache__" not in row["path"] and file.suffix == ".py"
        if row.get("drop_reason") != "decode_error":
            assert row["text"] == file.read_bytes().decode("utf-8-sig")

    assert run(argv, tmp_path / "two") == rows
    capsys.readouterr()
    assert main(["ingest", *argv, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    said = capsys.readouterr()
    assert "done earlier" in said.out + said.err, said


def fake_environment(monkeypatch, tmp_path: Path) -> tuple[Path, Path]:
    """purelib and platlib as two folders of our own, as where lib and lib64 differ."""
    purelib, platlib = tmp_path / "lib" / "site-packages", tmp_path / "lib64" / "site-packages"
    files = {purelib / "alpha" / "__init__.py": "A = 1\n", purelib / "alpha" / "tests" / "test_a.py": "T = 1\n",
             purelib / "alpha" / "__pycache__" / "stale.py": "S = 1\n", purelib / "beta.py": "B = 1\n",
             purelib / "setup.pth": "/elsewhere\n", platlib / "beta.py": "B = 2\n",
             platlib / "gamma" / "core.py": "G = 1\n"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    paths = {**sysconfig.get_paths(), "purelib": str(purelib), "platlib": str(platlib)}
    monkeypatch.setattr(sysconfig, "get_paths", lambda: paths)
    return purelib, platlib


def test_both_folders_tests_kept_bytecode_skipped_and_a_new_package_runs_again(monkeypatch, tmp_path):
    purelib, platlib = fake_environment(monkeypatch, tmp_path)
    settings = IngestConfig(source="installed", min_lines=1, files_per_task=2)
    stage = IngestStage(settings)
    assert [(task.root, task.relpaths) for task in stage.plan()] == [
        (str(purelib), ("alpha/__init__.py", "alpha/tests/test_a.py")), (str(purelib), ("beta.py",)),
        (str(platlib), ("gamma/core.py",))]
    out = tmp_path / "out"
    run_step(stage, out, executor=make_executor("local", 1), say=lambda _: None)
    rows = data.read_dataset(out).to_pylist()
    assert [(row["id"], row["package"], row["text"]) for row in rows] == [
        ("installed:alpha/__init__.py", "alpha", "A = 1\n"), ("installed:alpha/tests/test_a.py", "alpha", "T = 1\n"),
        ("installed:beta.py", "beta", "B = 1\n"), ("installed:gamma/core.py", "gamma", "G = 1\n")]
    fingerprint = stage.identity()
    assert fingerprint["folders"] == [str(purelib), str(platlib)] and fingerprint["files"] == 4
    (purelib / "delta").mkdir()
    (purelib / "delta" / "__init__.py").write_text("D = 1\n")
    assert stage.identity() != fingerprint
    assert run_step(stage, out, executor=make_executor("local", 1), say=lambda _: None).status != "done earlier"
    assert "installed:delta/__init__.py" in {row["id"] for row in data.read_dataset(out).to_pylist()}


def test_the_budget_gives_each_package_an_equal_share_at_even_steps():
    relpaths = sorted(["one.py"] + [f"three/{n}.py" for n in range(3)] + [f"ten/{n}.py" for n in range(10)])
    assert installed.spread(relpaths, 6) == ["one.py", "ten/1.py", "ten/5.py", "ten/8.py", "three/0.py",
                                             "three/2.py"]
    assert installed.spread(relpaths, 100) == relpaths
    assert installed.spread(relpaths, 2) == ["ten/5.py", "three/1.py"]  # more packages than files: the largest
    assert all(len(installed.spread(relpaths, budget)) == budget for budget in range(1, len(relpaths) + 1))


def refused(capsys, argv: list[str], out: Path) -> str:
    """Run the command line; it must exit 2 with one message, no traceback, and nothing marked done."""
    assert main(["ingest", *argv, "--workers", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("textbooks: error: ") and "Traceback" not in error, error
    assert not (out / data.MARKER).exists()
    return error


@pytest.mark.parametrize(("argv", "message"), [
    (["--source", "installed", "--max-files", "10", "--limit", "5"], "limit and max_files both cap the files"),
    (["--source", "dir", "--path", ".", "--max-files", "10"],
     "max_files is a setting of source installed, but source is dir"),
    (["--max-files", "10"], "max_files is a setting of source installed, but source is stdlib"),
    (["--source", "installed", "--path", "."], "path is a setting of source dir or files, but source is installed"),
    (["--source", "installed", "--max-files", "0"], "max-files"),
    (["--source", "installed", "--include", "no_such_package/*.py"],
     "(the installed packages): no file matches include ['no_such_package/*.py']"),
])
def test_bad_settings_are_refused_with_one_message(tmp_path, capsys, argv, message):
    assert message in refused(capsys, argv, tmp_path / "out")
