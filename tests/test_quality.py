"""Quality filtering: embed, classify and filter on a small corpus of educational and boilerplate snippets whose
labels the test writes (the contract of annotate's output: the corpus's columns plus edu_label and edu_reason)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from quality_snippets import BOILERPLATE, EDUCATIONAL
from sklearn.metrics import roc_auc_score

from textbooks.cli import main
from textbooks.errors import UserError
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_step
from textbooks.quality.classify import ClassifyConfig, ClassifyStage
from textbooks.quality.config import EmbedConfig
from textbooks.quality.embed import EmbedStage
from textbooks.quality.filter import FilterConfig, FilterStage
from textbooks.quality.hashing import HashingEmbedder
from textbooks.quality.vectors import META, as_matrix
from textbooks.store import data


def write_dataset(folder: Path, rows: list[dict], shards: int = 2) -> Path:
    """A finished dataset folder, as a stage leaves it, with `rows` cut into `shards` parts."""
    for index in range(shards):
        part = rows[index::shards]
        if part:
            data.write_table(pa.Table.from_pylist(part), folder / data.shard_name(index))
    data.write_marker(folder, {"stage": "ingest", "kind": "dataset", "fingerprint": f"test-{len(rows)}-{shards}"})
    return folder


def run(step, out: Path) -> Path:
    run_step(step, out, executor=make_executor("process", 1), say=lambda _: None)
    return out


def truth_of(row_id: str) -> bool:
    return row_id.startswith("edu-")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """The corpus (48 snippets, shuffled, 2 shards) and labels on half of it: educational rows 4 or 5,
    boilerplate 0 or 1, and two rows the judge could not score (null)."""
    root = tmp_path_factory.mktemp("quality")
    rows = [{"id": f"edu-{index}", "text": text, "source": "test"} for index, text in enumerate(EDUCATIONAL)]
    rows += [{"id": f"boiler-{index}", "text": text, "source": "test"} for index, text in enumerate(BOILERPLATE)]
    random.Random(3).shuffle(rows)
    labelled = [row for row in rows if int(row["id"].split("-")[1]) % 2 == 0]
    labels = [{**row, "edu_label": float(4 + index % 2) if truth_of(row["id"]) else float(index % 2),
               "edu_reason": "teaches a concept" if truth_of(row["id"]) else "configuration"}
              for index, row in enumerate(labelled)]
    labels += [{**row, "edu_label": None, "edu_reason": "the judge gave no score"}
               for row in rows if row["id"] in ("edu-1", "boiler-1")]
    return write_dataset(root / "corpus", rows), write_dataset(root / "labels", labels, shards=1)


@pytest.fixture(scope="module")
def pipeline(corpus, tmp_path_factory) -> dict[str, Path]:
    corpus_folder, labels = corpus
    root = tmp_path_factory.mktemp("pipeline")
    embed = run(EmbedStage(EmbedConfig(), str(corpus_folder)), root / "embed")
    classify = run(ClassifyStage(ClassifyConfig(labels=str(labels), embeddings=str(embed), test_fraction=0.25),
                                 str(corpus_folder)), root / "classify")
    return {"embed": embed, "classify": classify, "root": root}


def test_hashing_vectors_are_fixed_size_unit_length_and_the_same_alone_or_in_a_batch() -> None:
    embedder = HashingEmbedder(64)
    batch = embedder.embed(EDUCATIONAL[:3] + [""])
    assert batch.shape == (4, 64) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch[:3], axis=1), 1.0) and not batch[3].any()
    assert np.array_equal(embedder.embed([EDUCATIONAL[1]])[0], batch[1])
    assert not np.allclose(batch[0], batch[1])


def test_embed_writes_ids_and_float16_vectors_and_says_which_embedder(corpus, pipeline) -> None:
    embed = pipeline["embed"]
    table = data.read_dataset(embed)
    assert table.column_names == ["id", "embedding"] and table.schema.field("embedding").type.list_size == 256
    assert table.schema.field("embedding").type.value_type == pa.float16()
    assert sorted(table["id"].to_pylist()) == sorted(data.read_dataset(corpus[0])["id"].to_pylist())
    meta = data.read_json(embed / META)
    assert (meta["embedder"], meta["model"], meta["dimension"], meta["rows"]) == ("hashing", None, 256, 48)
    assert data.read_stats(embed)["embedder"] == meta
    text = dict(zip(*data.read_dataset(corpus[0], ["id", "text"]).to_pydict().values()))
    first = table.slice(0, 1)
    expected = HashingEmbedder(256).embed([text[first["id"][0].as_py()]]).astype(np.float16)
    assert np.array_equal(as_matrix(first["embedding"], 256), expected.astype(np.float32))


def test_the_classifier_ranks_educational_snippets_above_boilerplate(pipeline) -> None:
    stats = data.read_stats(pipeline["classify"])
    report = stats["classifier"]
    held_out = report["held_out"]
    assert (report["labelled_rows"], report["unjudged_rows"], report["training_rows"]) == (24, 2, 18)
    assert held_out["rows"] == 6 and held_out["roc_auc"] >= 0.9, held_out
    assert set(held_out["confusion_matrix"]) == {"true_negative", "false_positive", "false_negative", "true_positive"}
    assert sum(held_out["confusion_matrix"].values()) == 6
    assert [point["threshold"] for point in held_out["precision_recall_curve"]][:2] == [0.05, 0.1]
    assert {"precision", "recall", "f1"} <= set(held_out)

    scored = data.read_dataset(pipeline["classify"])
    assert scored.num_rows == 48 and scored.column_names == ["id", "text", "source", "edu_score"]
    # The rows the classifier never saw (odd numbers: not in the labels) are ranked with its scores.
    unseen = [row for row in scored.to_pylist() if int(row["id"].split("-")[1]) % 2 == 1]
    assert len(unseen) == 24
    auc = roc_auc_score([truth_of(row["id"]) for row in unseen], [row["edu_score"] for row in unseen])
    assert auc >= 0.9, auc


def test_the_saved_classifier_says_what_it_expects(pipeline) -> None:
    import joblib
    import sklearn

    folder = pipeline["classify"] / "classifier"
    meta = data.read_json(folder / "classifier.json")
    assert meta["embeddings"] == {"embedder": "hashing", "model": None, "dimension": 256}
    assert (meta["classifier"], meta["label_threshold"], meta["training_rows"]) == ("random-forest", 3.0, 18)
    assert meta["sklearn"] == sklearn.__version__
    model = joblib.load(folder / "model.joblib")
    assert model.n_features_in_ == 256 and model.n_estimators == 200


@pytest.mark.parametrize("classifier", ["logistic-regression", "hist-gradient-boosting"])
def test_the_other_classifiers_fit_and_score_too(corpus, pipeline, tmp_path: Path, classifier: str) -> None:
    config = ClassifyConfig(labels=str(corpus[1]), embeddings=str(pipeline["embed"]), classifier=classifier,
                            trees=50, test_fraction=0.25)
    out = run(ClassifyStage(config, str(corpus[0])), tmp_path / classifier)
    report = data.read_stats(out)["classifier"]
    assert report["classifier"] == classifier and 0.0 <= report["held_out"]["roc_auc"] <= 1.0
    scores = data.read_dataset(out)["edu_score"].to_numpy()
    assert len(scores) == 48 and ((0 <= scores) & (scores <= 1)).all()


def test_a_saved_classifier_scores_another_corpus_and_is_measured_on_labels(corpus, pipeline, tmp_path) -> None:
    config = ClassifyConfig(embeddings=str(pipeline["embed"]), model=str(pipeline["classify"]), labels=str(corpus[1]))
    out = run(ClassifyStage(config, str(corpus[0])), tmp_path / "again")
    first = data.read_dataset(pipeline["classify"])["edu_score"].to_pylist()
    assert data.read_dataset(out)["edu_score"].to_pylist() == first
    report = data.read_stats(out)["classifier"]
    assert report["source"] == str(pipeline["classify"]) and report["labels_measured"]["rows"] == 24
    assert not (out / "classifier").exists()


def test_filter_keeps_by_threshold_or_top_fraction_and_keeps_the_dropped_scores(pipeline) -> None:
    scored = pipeline["classify"]
    scores = sorted(data.read_dataset(scored)["edu_score"].to_pylist(), reverse=True)
    by_fraction = run(FilterStage(FilterConfig(fraction=0.25), str(scored)), pipeline["root"] / "top")
    kept = data.read_dataset(by_fraction)
    assert kept.num_rows == 12 and min(kept["edu_score"].to_pylist()) >= scores[11]
    dropped = data.read_dataset(by_fraction / data.DROPPED)
    assert dropped.num_rows == 36 and set(dropped["drop_reason"].to_pylist()) == {"low_edu_score"}
    assert max(dropped["edu_score"].to_pylist()) <= scores[11]
    stats = data.read_stats(by_fraction)
    assert (stats["kept_share"], stats["cutoff"], stats["drops"]) == (0.25, scores[11], {"low_edu_score": 36})

    by_threshold = run(FilterStage(FilterConfig(threshold=0.5), str(scored)), pipeline["root"] / "half")
    assert data.read_dataset(by_threshold).num_rows == sum(score >= 0.5 for score in scores)
    assert max(data.read_dataset(by_threshold / data.DROPPED)["edu_score"].to_pylist()) < 0.5


def test_a_fraction_breaks_ties_by_dataset_order_and_leaves_rows_without_a_score(tmp_path: Path) -> None:
    scores = [0.9, 0.5, None, 0.5, 0.1, 0.5, 0.5, 0.3]
    rows = [{"id": f"r{index}", "text": "x", "source": "test", "edu_score": score}
            for index, score in enumerate(scores)]
    scored = write_dataset(tmp_path / "scored", rows, shards=3)
    out = run(FilterStage(FilterConfig(fraction=0.5), str(scored)), tmp_path / "out")
    # 7 rows have a score: 4 are kept, 0.9 and the first three 0.5s in task order (shard 0, 1, 2).
    kept = set(data.read_dataset(out)["id"].to_pylist())
    order = [row["id"] for shard in range(3) for row in rows[shard::3] if row["edu_score"] == 0.5]
    assert kept == {"r0", *order[:3]}
    reasons = dict(zip(*data.read_dataset(out / data.DROPPED, ["id", "drop_reason"]).to_pydict().values()))
    assert reasons["r2"] == "no_edu_score" and reasons["r4"] == "low_edu_score" and len(reasons) == 4


def refused(capsys, argv: list[str], out: Path) -> str:
    """Run the command line; it must exit 2 with one message, no traceback, and nothing marked done."""
    assert main([*argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("textbooks: error: ") and "Traceback" not in error, error
    assert not (out / data.MARKER).exists()
    return error


def test_bad_input_is_refused_with_one_message_and_exit_2(corpus, pipeline, tmp_path: Path, capsys) -> None:
    corpus_folder, labels = (str(path) for path in corpus)
    embed = str(pipeline["embed"])
    error = refused(capsys, ["embed", "--input", corpus_folder, "--embedder", "word2vec"], tmp_path / "e")
    assert "flag '--embedder'" in error and "'hashing'" in error and "'causal-lm'" in error
    error = refused(capsys, ["embed", "--input", corpus_folder, "--model", "gpt2"], tmp_path / "e2")
    assert "the hashing embedder reads no model" in error

    error = refused(capsys, ["filter", "--input", corpus_folder, "--threshold", "0.5"], tmp_path / "f")
    assert "has no column 'edu_score'" in error and "textbooks classify" in error
    error = refused(capsys, ["filter", "--input", str(pipeline["classify"]), "--threshold", "0.5", "--fraction",
                             "0.2"], tmp_path / "f2")
    assert "give exactly one of them" in error

    error = refused(capsys, ["classify", "--input", corpus_folder, "--embeddings", embed], tmp_path / "c")
    assert "classify needs labels" in error
    other = tmp_path / "embed64"
    run(EmbedStage(EmbedConfig(dimension=64), corpus_folder), other)
    error = refused(capsys, ["classify", "--input", corpus_folder, "--embeddings", str(other), "--model",
                             str(pipeline["classify"])], tmp_path / "c2")
    assert "was fitted on hashing embeddings (dimension 256)" in error and "(dimension 64)" in error

    rows = data.read_dataset(Path(labels)).to_pylist()
    no_positive = write_dataset(tmp_path / "no-positive", [row for row in rows if not truth_of(row["id"])])
    error = refused(capsys, ["classify", "--input", corpus_folder, "--embeddings", embed, "--labels",
                             str(no_positive)], tmp_path / "c3")
    assert "has 0 educational rows (edu_label >= 3.0)" in error
    strangers = write_dataset(tmp_path / "strangers", [{**row, "id": f"elsewhere-{row['id']}"} for row in rows])
    error = refused(capsys, ["classify", "--input", corpus_folder, "--embeddings", embed, "--labels",
                             str(strangers)], tmp_path / "c4")
    assert "24 of 24 rows have no embedding" in error and "'elsewhere-" in error
    error = refused(capsys, ["classify", "--input", corpus_folder, "--embeddings", corpus_folder, "--labels",
                             labels], tmp_path / "c5")
    assert "holds no embeddings" in error


def test_sentence_transformers_needs_its_package(corpus, tmp_path: Path, capsys,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as where the package is not installed
    error = refused(capsys, ["embed", "--input", str(corpus[0]), "--embedder", "sentence-transformers"],
                    tmp_path / "st")
    assert "pip install 'textbooks[embed]'" in error


def test_a_recipe_names_the_labels_and_the_embeddings(tmp_path: Path, corpus) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"stages:\n  - stage: ingest\n  - stage: embed\n  - stage: classify\n    input: ingest\n"
                      f"    labels: {corpus[1]}\n    embeddings: '@embed'\n  - stage: filter\n    fraction: 0.2\n")
    steps = load_recipe(recipe).steps
    assert [step.kind for step in steps] == ["ingest", "embed", "classify", "filter"]
    assert steps[2].config.embeddings == "@embed" and steps[3].input == "@classify"
    recipe.write_text("stages:\n  - stage: ingest\n  - stage: classify\n    labels: '@annotate'\n"
                      "    embeddings: '@ingest'\n")
    with pytest.raises(UserError, match="'@annotate' names no earlier step"):
        load_recipe(recipe)


def test_a_killed_classify_resumes_without_fitting_again(corpus, pipeline, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    out = tmp_path / "classify"
    command = ["classify", "--input", str(corpus[0]), "--labels", str(corpus[1]), "--embeddings",
               str(pipeline["embed"]), "--test-fraction", "0.25", "--workers", "1", "--out", str(out)]
    script = "import sys; from textbooks.cli import main; sys.exit(main(sys.argv[1:]))"
    killed = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": "classify:map:1"})
    assert killed.returncode == -9, killed.stderr
    fitted = (out / "classifier" / "model.joblib").stat().st_mtime_ns
    assert not (out / data.MARKER).exists() and len(list(out.glob(data.SHARD_GLOB))) == 1
    assert main(command) == 0
    assert (out / "classifier" / "model.joblib").stat().st_mtime_ns == fitted
    assert data.read_stats(out)["done_earlier"]["map"] == 1
    assert data.read_dataset(out).to_pylist() == data.read_dataset(pipeline["classify"]).to_pylist()
