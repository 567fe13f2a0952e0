"""Every failure a user meets ends in one clear line (exit code 2), and leaves nothing that looks complete.

The inputs are a real run of the small demo recipe (`test_rerun.small_demo`): a dataset, token data, a
training run, an exported model and an evaluation. The file-system cases (a read-only output folder, a disk
that fills up) run the command line in a mount namespace with a small tmpfs, where the machine allows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_rerun import small_demo

from textbooks.cli import main
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_recipe
from textbooks.store import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished small demo run: ingest, dedup, tokenize, pretrain, export-hf, eval, report."""
    folder = tmp_path_factory.mktemp("failures")
    run_recipe(load_recipe(small_demo(folder / "recipe.yaml")), folder / "run", say=lambda message: None)
    return folder / "run"


def refused(capsys, *argv: str) -> str:
    """Run the command in this process; assert exit code 2 and one line on stderr; that line."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    assert code == 2, (captured.out, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("textbooks: error: "), captured.err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """What a finished step must not keep: temporaries and unfinished-work folders (names starting with a dot)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*"))


def commands(run_dir: Path, out: Path) -> dict[str, list[str]]:
    """A command per writing step, writing into `out` (a path that tests make unusable)."""
    return {
        "ingest": ["ingest", "--source", "dir", "--path", str(ROOT / "src" / "textbooks" / "corpus"),
                   "--units", "function", "--out", str(out)],
        "dedup": ["dedup", "--input", str(run_dir / "ingest"), "--workers", "1", "--out", str(out)],
        "tokenize": ["tokenize", "--input", str(run_dir / "dedup"), "--vocab-size", "300", "--out", str(out)],
        "train": ["train", "--input", str(run_dir / "tokenize"), "--model", "tiny", "--seq-len", "32",
                  "--batch-size", "2", "--micro-batch-size", "2", "--max-steps", "2", "--checkpoint-every", "1",
                  "--model-overrides", "num_hidden_layers=1", "hidden_size=64", "intermediate_size=128",
                  "num_attention_heads=2", "--out", str(out)],
        "export-hf": ["export-hf", str(run_dir / "pretrain"), str(out)],
        "eval": ["eval", str(run_dir / "export-hf"), "--bench", "fresh", "--limit", "1", "--max-new-tokens", "4",
                 "--out", str(out)],
        "import-hf": ["import-hf", str(run_dir / "export-hf"), "--out", str(out)],
        "run": ["run", str(run_dir.parent / "recipe.yaml"), "--out", str(out)],
    }


# --- item 1: the file system refuses ---------------------------------------------------------------------------

@pytest.mark.parametrize("step", ["ingest", "dedup", "tokenize", "train", "export-hf", "eval", "import-hf", "run"])
def test_an_output_that_is_a_file_is_refused_in_one_line(run_dir, tmp_path, capsys, step) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file the user keeps\n")
    line = refused(capsys, *commands(run_dir, taken)[step])
    assert str(taken) in line and "is a file" in line
    assert taken.read_text() == "a file the user keeps\n"


DRIVER = """
import contextlib, io, json, subprocess, sys
from pathlib import Path

from textbooks.cli import main

cases, mount, size, rerun, results = json.loads(Path(sys.argv[1]).read_text())
mount, found = Path(mount), {}


def run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue().strip().splitlines()


for name, argv in cases.items():
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(mount)], check=True)
    code, lines = run(argv)
    found[name] = {"code": code, "lines": lines, "files": sorted(str(p.relative_to(mount)) for p in mount.rglob("*"))}
    if rerun:
        subprocess.run(["mount", "-o", "remount,rw,size=256m", str(mount)], check=True)
        code, lines = run(argv)
        target = mount / name
        found[name].update(again={"code": code, "lines": lines},
                           hidden=sorted(str(p.relative_to(target)) for p in target.rglob(".*")))
    subprocess.run(["umount", str(mount)], check=True)
Path(results).write_text(json.dumps(found))
"""


def run_in_namespace(cases: dict[str, list[str]], tmp_path: Path, size: str, rerun: bool = False) -> dict:
    """Each case's exit code and stderr lines, with an output folder on a fresh tmpfs mounted with `size`
    (mount options) in a private mount namespace; with `rerun`, run again after giving the tmpfs room."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here: cannot make a small or read-only file system to write to")
    settings, driver, results = tmp_path / "cases.json", tmp_path / "driver.py", tmp_path / "results.json"
    settings.write_text(json.dumps([cases, str(tmp_path / "mnt"), size, rerun, str(results)]))
    driver.write_text(DRIVER)
    # as root, a mount namespace alone (the sandbox still makes its own inside); else a user namespace too
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    done = subprocess.run([*unshare, sys.executable, str(driver), str(settings)], capture_output=True, text=True,
                          env={**os.environ, "TEXTBOOKS_CACHE": str(tmp_path / "cache")}, timeout=600)
    if not results.is_file() and ("mount" in done.stderr or "unshare" in done.stderr):
        pytest.skip(f"this machine refuses a mount namespace with a tmpfs ({done.stderr.strip()[-200:]})")
    assert results.is_file(), done.stderr
    return json.loads(results.read_text())


def test_a_read_only_output_folder_is_one_line_for_every_writing_step(run_dir, tmp_path) -> None:
    mount = tmp_path / "mnt"
    found = run_in_namespace(commands(run_dir, mount / "out"), tmp_path, "ro,size=1m")
    for name, result in found.items():
        assert result["code"] == 2 and len(result["lines"]) == 1, (name, result)
        line = result["lines"][0]
        assert line.startswith("textbooks: error: cannot write ") and "Read-only file system" in line, name
        assert str(mount) in line, (name, line)


def test_a_full_disk_is_one_line_leaves_nothing_complete_and_the_next_run_no_temporary(run_dir, tmp_path) -> None:
    mount = tmp_path / "mnt"
    cases = {name: commands(run_dir, mount / name)[name]
             for name in ("ingest", "dedup", "tokenize", "train", "export-hf", "eval", "import-hf")}
    recipe = yaml.safe_load((run_dir.parent / "recipe.yaml").read_text())
    recipe["stages"] = [step for step in recipe["stages"] if step["stage"] in ("ingest", "dedup")]  # kept short
    (tmp_path / "two-steps.yaml").write_text(yaml.safe_dump(recipe))
    cases["run"] = ["run", str(tmp_path / "two-steps.yaml"), "--out", str(mount / "run")]
    found = run_in_namespace(cases, tmp_path, "size=24k", rerun=True)
    for name, result in found.items():
        assert result["code"] == 2 and len(result["lines"]) == 1, (name, result)
        assert "No space left on device" in result["lines"][0] and str(mount) in result["lines"][0], name
        assert not any(path.endswith(data.MARKER) for path in result["files"]), (name, result["files"])
        assert result["again"]["code"] == 0, (name, result["again"])
        assert result["hidden"] == [], (name, result["hidden"])


# --- item 2: inputs named for what they are --------------------------------------------------------------------

@pytest.mark.parametrize(("folder", "holds"), [("tokenize", "token data"), ("pretrain", "a model"),
                                               ("export-hf", "a model"), ("eval", "an evaluation")])
def test_a_finished_folder_that_is_not_a_dataset_is_named(run_dir, tmp_path, capsys, folder, holds) -> None:
    line = refused(capsys, "dedup", "--input", run_dir / folder, "--out", tmp_path / "out")
    assert f"holds {holds}" in line and "dedup takes a dataset" in line
    assert not (tmp_path / "out").exists()


def test_an_unfinished_dataset_is_refused_not_read_as_files(run_dir, tmp_path, capsys) -> None:
    killed = tmp_path / "killed"
    result = subprocess.run([sys.executable, "-m", "textbooks", "dedup", "--input", str(run_dir / "ingest"),
                             "--workers", "1", "--out", str(killed)], capture_output=True, text=True,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": "dedup:map:1"}, timeout=300)
    assert result.returncode == -9 and (killed / ".work").is_dir() and not data.is_complete(killed)
    for step in ("dedup", "tokenize"):
        line = refused(capsys, step, "--input", killed, "--out", tmp_path / step)
        assert f"{killed} is not finished (`textbooks dedup` stopped before its end" in line
        assert "run the step that makes it" in line
        assert not (tmp_path / step).exists()


def test_a_recipe_and_a_samples_file_that_are_not_utf8_are_named(tmp_path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(b"name: demo\n# caf\xe9\nstages: []\n")
    assert "not UTF-8" in refused(capsys, "run", recipe, "--out", tmp_path / "run")
    samples = tmp_path / "samples.jsonl"
    samples.write_bytes(b'{"task_id": "HumanEval/0", "completion": "    return 1\\n"}\n'
                        b'{"task_id": "HumanEval/1", "completion": "    return \xff\\n"}\n')
    line = refused(capsys, "eval", "--samples", samples, "--bench", "humaneval", "--out", tmp_path / "eval")
    assert f"{samples}, line 2: not UTF-8" in line


@pytest.mark.parametrize(("value", "kind"), [("5", "number"), ("null", "null"), ('["x"]', "array")])
def test_a_completion_that_is_not_a_string_is_named(tmp_path, capsys, value, kind) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "HumanEval/0", "completion": ' + value + "}\n")
    line = refused(capsys, "eval", "--samples", samples, "--bench", "humaneval", "--out", tmp_path / "eval")
    assert f"line 1: `completion` is a JSON {kind}, not a string" in line


def test_k_zero_is_refused_before_anything_is_generated(run_dir, tmp_path, capsys) -> None:
    line = refused(capsys, "eval", run_dir / "export-hf", "--bench", "fresh", "--k", "0", "--out", tmp_path / "e")
    assert "flag '--k'" in line and "at least 1" in line
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_workers_below_one_is_refused_by_the_recipe_rule(run_dir, tmp_path, capsys, workers) -> None:
    line = refused(capsys, "dedup", "--input", run_dir / "ingest", "--workers", workers, "--out", tmp_path / "d")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"workers: {workers}\nstages:\n  - stage: ingest\n")
    from_recipe = refused(capsys, "run", recipe, "--out", tmp_path / "run")
    rule = "Input should be greater than or equal to 1"
    assert f"flag '--workers': {rule} (got {workers})" in line and rule in from_recipe


@pytest.mark.parametrize(("flags", "named"), [(["--bands", "200"], "--bands"), (["--rows", "200"], "--rows"),
                                              (["--bands", "20", "--rows", "20"], "--rows")])
def test_an_lsh_shape_that_does_not_fit_names_the_flag_given(run_dir, tmp_path, capsys, flags, named) -> None:
    line = refused(capsys, "dedup", "--input", run_dir / "ingest", *flags, "--out", tmp_path / "d")
    assert f"flag '{named}'" in line and "num_perm (128)" in line and "(got None)" not in line


# --- honest scores: partial samples ----------------------------------------------------------------------------

def test_partial_samples_are_refused_unless_allowed_then_scored_with_their_coverage(tmp_path, capsys) -> None:
    from textbooks.benchmarks import load_benchmark

    problems = load_benchmark("humaneval")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n"
                               for p in problems[:3]))
    line = refused(capsys, "eval", "--samples", samples, "--bench", "humaneval", "--out", tmp_path / "refused")
    assert f"covers 3 of the {len(problems)} humaneval tasks ({len(problems) - 3} missing: HumanEval/3" in line
    assert "--allow-partial" in line and not (tmp_path / "refused" / data.MARKER).exists()

    assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--allow-partial",
                 "--out", str(tmp_path / "partial")]) == 0
    said = capsys.readouterr().out
    assert f"eval: humaneval: pass@1 100.0% (on 3 of {len(problems)} tasks: partial samples)" in said
    summary = json.loads((tmp_path / "partial" / "summary.json").read_text())
    assert summary["benchmarks"]["humaneval"]["coverage"] == {"tasks": 3, "of": len(problems)}
    assert f"| humaneval | 3 of {len(problems)} (partial) | 3 | 100.0% |" in \
        (tmp_path / "partial" / "summary.md").read_text()


# --- item 6: consistent commands -------------------------------------------------------------------------------

def test_standalone_export_hf_writes_stats_and_marker_like_the_recipe_step(run_dir, tmp_path, capsys) -> None:
    assert main(["export-hf", str(run_dir / "pretrain"), str(tmp_path / "hf")]) == 0
    alone, in_recipe = data.read_stats(tmp_path / "hf"), data.read_stats(run_dir / "export-hf")
    assert data.is_complete(tmp_path / "hf") and alone["stage"] == in_recipe["stage"] == "export-hf"
    assert sorted(alone) == sorted(in_recipe)
    names = {path.name for path in (tmp_path / "hf").iterdir()}
    assert names == {path.name for path in (run_dir / "export-hf").iterdir()}


def test_ingest_keeps_the_records_own_columns_with_one_type_across_files(tmp_path, capsys) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    body = "def f{0}(x):\n    y = x + {0}\n    return y\n"
    (corpus / "a.jsonl").write_text("".join(json.dumps(
        {"text": body.format(i), "license": "mit", "stars": i, "path": f"repo/m{i}.py", "meta": {"n": i}}) + "\n"
        for i in range(3)))
    (corpus / "b.jsonl").write_text(json.dumps({"text": body.format(7), "license": None, "stars": "many"}) + "\n"
                                    + json.dumps({"text": body.format(0), "license": "bsd"}) + "\n")
    assert main(["ingest", "--source", "files", "--path", str(corpus), "--engine", "local",
                 "--out", str(tmp_path / "kept")]) == 0
    from conftest import dataset_rows

    rows = {row["id"]: row for row in dataset_rows(tmp_path / "kept")}
    assert rows["corpus:a.jsonl:2"]["license"] == "mit" and rows["corpus:a.jsonl:2"]["meta"] == {"n": 1}
    assert rows["corpus:a.jsonl:2"]["record_path"] == "repo/m1.py"  # `path` is ours: theirs is renamed
    assert rows["corpus:a.jsonl:2"]["path"] == "a.jsonl:2"
    assert rows["corpus:a.jsonl:2"]["stars"] == "1" and rows["corpus:b.jsonl:1"]["stars"] == "many"
    assert rows["corpus:b.jsonl:1"]["meta"] is None
    dropped = data.read_dataset(tmp_path / "kept" / "dropped").to_pylist()
    assert [(row["license"], row["drop_reason"]) for row in dropped] == [("bsd", "exact_duplicate")]

    assert main(["ingest", "--source", "files", "--path", str(corpus), "--no-extra-columns", "--engine", "local",
                 "--out", str(tmp_path / "plain")]) == 0
    plain = data.read_dataset(tmp_path / "plain")
    assert "license" not in plain.column_names and "stars" not in plain.column_names


def test_every_flag_of_every_step_has_a_description() -> None:
    import argparse

    from textbooks.cli import step_parser
    from textbooks.pipeline.table import STEPS

    missing = []
    for name in STEPS:
        parser, _, _ = step_parser(name)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS or action.help.strip() in ("", "-"):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_readme_reading_examples_work_as_written(run_dir) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- reading-examples -->")[1].split("```python")[1].split("```")[0]
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(run_dir)
    try:
        exec(compile(block.replace("OUT", "ingest"), "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    stats = data.read_stats(run_dir / "ingest")
    assert [len(namespace[name]) for name in ("frame", "table", "rows")] == [stats["rows_out"]] * 3
    assert len(namespace["dropped"]) == sum(stats["drops"].values()) > 0
    assert namespace["frame"]["id"].tolist() == namespace["table"]["id"].to_pylist()
