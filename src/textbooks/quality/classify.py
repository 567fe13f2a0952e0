"""`textbooks classify`: learn the judge's labels from embeddings, then score every row of the corpus.

    textbooks classify --input runs/x/ingest --out runs/x/classify --labels runs/x/annotate \\
        --embeddings runs/x/embed                    # fit a random forest, as the paper (section 2.1)
    textbooks classify --input runs/y/ingest --out runs/y/classify --embeddings runs/y/embed \\
        --model runs/x/classify                      # score another corpus with that classifier

A recipe writes `labels: '@annotate'` and `embeddings: '@embed'`. The labels are annotate's sample: the corpus's
columns plus `edu_label` (the judge's 0-5 score; null where it gave none, and such rows are left out). A row is
educational when `edu_label >= label_threshold`. The labelled rows' embeddings are looked up by id; a seeded,
stratified share of them (`test_fraction`) is held out, the classifier is fitted on the rest, and its held-out
precision, recall, F1, ROC-AUC, confusion matrix and precision-recall curve go to stats.json. The fitted model
is saved in `classifier/` with what it expects (`textbooks.quality.classifiers`). Every row of the corpus then
gets `edu_score`, the classifier's probability that it is educational, once: `textbooks filter` only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from textbooks.errors import UserError
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.refs import DatasetInput, PathInput
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.quality import vectors
from textbooks.quality.classifiers import (
    ClassifierName,
    held_out_measures,
    load_classifier,
    make_classifier,
    positive_scores,
    read_classifier_meta,
    save_classifier,
)
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

LABEL, SCORE = "edu_label", "edu_score"
CLASSIFIER = "classifier"
KEYS = ("embedder", "model", "dimension")  # what a classifier and the embeddings it reads must agree on


class ClassifyConfig(StepConfig):
    embeddings: DatasetInput = Field(
        description="The embed output for this corpus (`@embed` in a recipe): every row's vector, by id.")
    labels: DatasetInput | None = Field(
        None,
        description="The judged sample (`@annotate` in a recipe): rows of the corpus with edu_label, the "
                    "judge's 0-5 score. Needed to fit a classifier; with model, the saved one is measured on it.")
    model: PathInput | None = Field(
        None,
        description="A classifier saved by an earlier classify (its output folder or its classifier/ folder): "
                    "score the corpus with it instead of fitting one. It must have been fitted on embeddings "
                    "of the same embedder and model.")
    classifier: ClassifierName = Field(
        "random-forest",
        description="random-forest (the paper's), logistic-regression (on standardised features) or "
                    "hist-gradient-boosting.")
    label_threshold: float = Field(
        3.0, ge=0.0, le=5.0,
        description="A row counts as educational when its edu_label is at least this: 3 on the 0-5 scale is the "
                    "middle of the scale's upper half, the cut FineWeb-Edu uses for its own 0-5 judge.")
    test_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of the labelled rows held out (stratified) to measure the classifier.")
    seed: int = Field(0, ge=0, description="Seed of the held-out split and of the classifier.")
    trees: int = Field(200, ge=1, description="Trees of the random forest; iterations of gradient boosting.")


@dataclass(frozen=True)
class Labels:
    """The judged rows: their ids, whether each is educational, and how many rows the judge left unscored."""

    ids: list[str]
    truth: np.ndarray
    unjudged: int


@dataclass(frozen=True)
class ScoreTask:
    """One part of the corpus; `index` is also the number of its embeddings' shard."""

    index: int
    part: Part


class ClassifyStage(Stage):
    name = "classify"
    Config = ClassifyConfig
    outputs = (*Stage.outputs, CLASSIFIER)
    config: ClassifyConfig
    model_path: Path | None = None  # the classifier the workers load: fitted into OUT, or `model`

    @classmethod
    def check(cls, config: ClassifyConfig) -> None:
        if config.labels is None and config.model is None:
            raise SettingError("labels", "classify needs labels (the judged sample: `labels: '@annotate'`, or "
                                         "--labels FOLDER) to fit a classifier, or model, a classifier saved "
                                         "by an earlier classify")

    def plan(self) -> list[ScoreTask]:
        return [ScoreTask(index, part) for index, part in enumerate(plan_parts(self.input))]

    def setup(self, worker: Worker) -> Any:
        return load_classifier(self.model_path)

    def map(self, task: ScoreTask) -> ShardResult:
        table = read_table(task.part)
        ids = pc.cast(table["id"], pa.string()).to_pylist()
        features = vectors.lookup(self.config.embeddings, ids, self.name, shard_index=task.index)
        if SCORE in table.column_names:
            table = table.drop_columns([SCORE])
        table = table.append_column(SCORE, pa.array(positive_scores(self.state, features), pa.float64()))
        return ShardResult(kept=table, counters={"scored": table.num_rows})

    def run(self, ctx: Context) -> dict:
        embeddings = vectors.read_meta(self.config.embeddings, self.name)
        report = ctx.work.load(CLASSIFIER) if ctx.resuming else None
        if report is None:
            report = self._fit(ctx.out, embeddings) if self.config.model is None else self._saved(embeddings)
            ctx.work.save(CLASSIFIER, report)
        self.model_path = ctx.out / CLASSIFIER if self.config.model is None else Path(self.config.model)
        stats = run_stage(self, ctx)
        return {**stats, CLASSIFIER: report}

    def _saved(self, embeddings: dict) -> dict:
        """The saved classifier's description, refused when it expects other embeddings; measured on labels."""
        meta = read_classifier_meta(self.config.model)
        expected = meta["embeddings"]
        if any(expected.get(key) != embeddings.get(key) for key in KEYS):
            raise UserError(f"classify: the classifier in {self.config.model} was fitted on "
                            f"{vectors.describe(expected)}, but {self.config.embeddings} holds "
                            f"{vectors.describe(embeddings)}; embed the corpus the classifier's way, or fit a new "
                            "classifier on these embeddings (give labels, not model)")
        report = {**meta, "source": str(self.config.model)}
        if self.config.labels is not None:
            labels = self._labels()
            scores = positive_scores(load_classifier(self.config.model), self._features(labels.ids))
            report["labels_measured"] = held_out_measures(labels.truth, scores)
        return report

    def _fit(self, out: Path, embeddings: dict) -> dict:
        """Fit on the labelled rows, measure on the held-out ones, save into OUT/classifier; the report."""
        from sklearn.model_selection import train_test_split

        config = self.config
        labels = self._labels()
        train_x, test_x, train_y, test_y = train_test_split(
            self._features(labels.ids), labels.truth, test_size=config.test_fraction, random_state=config.seed,
            stratify=labels.truth)
        model = make_classifier(config.classifier, config.seed, config.trees).fit(train_x, train_y)
        measures = held_out_measures(test_y, positive_scores(model, test_x))
        report = {"classifier": config.classifier, "embeddings": {key: embeddings.get(key) for key in KEYS},
                  "label_threshold": config.label_threshold, "labelled_rows": len(labels.ids),
                  "positive_rows": int(labels.truth.sum()), "unjudged_rows": labels.unjudged,
                  "training_rows": len(train_y), "held_out": measures}
        save_classifier(model, report, out / CLASSIFIER)
        return report

    def _labels(self) -> Labels:
        """The ids of the rows the judge scored, and whether each is educational; refused when one class is
        missing or too small to be both fitted and held out."""
        config = self.config
        table = data.read_dataset(Path(config.labels))
        if LABEL not in table.column_names:
            raise UserError(f"classify: {config.labels} has no {LABEL} column (it has "
                            f"{', '.join(table.column_names)}); give annotate's output as labels")
        scored = table.filter(pc.is_valid(table[LABEL]))
        labels = np.asarray(pc.cast(scored[LABEL], pa.float64()).to_numpy(zero_copy_only=False))
        truth = labels >= config.label_threshold
        positives, negatives = int(truth.sum()), int((~truth).sum())
        least = 2 if config.model is None else 1
        if min(positives, negatives) < least:
            raise UserError(
                f"classify: {config.labels} has {positives} educational rows ({LABEL} >= {config.label_threshold}) "
                f"and {negatives} others among {scored.num_rows} judged rows; a classifier needs at least {least} "
                "of each (to fit and to hold out): judge a larger sample, or move label_threshold")
        self._check_split(positives, negatives)
        return Labels(pc.cast(scored["id"], pa.string()).to_pylist(), truth, table.num_rows - scored.num_rows)

    def _check_split(self, positives: int, negatives: int) -> None:
        if self.config.model is not None:
            return
        rows = positives + negatives
        held_out = math.ceil(self.config.test_fraction * rows)
        if held_out < 2 or rows - held_out < 2:
            raise UserError(f"classify: {rows} judged rows leave {held_out} held out at test_fraction "
                            f"{self.config.test_fraction}; judge more rows, or change test_fraction so that both "
                            "parts have a row of each class")

    def _features(self, ids: list[str]) -> np.ndarray:
        return vectors.lookup(self.config.embeddings, ids, self.name)
