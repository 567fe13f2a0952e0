"""The scikit-learn classifiers of `textbooks classify`, how they are measured, and how they are saved.

    model = make_classifier("random-forest", seed=0, trees=200).fit(train_x, train_y)
    measures = held_out_measures(test_y, model.predict_proba(test_x)[:, 1])
    save_classifier(model, meta, Path("runs/x/classify/classifier"))

A saved classifier is a folder: `model.joblib` (scikit-learn's persistence; load it only from a source you
trust, as any pickle) and `classifier.json` (the embedder it was fitted on, the label threshold, the training
rows, the classifier, scikit-learn's version and the held-out measures), written last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from textbooks.errors import UserError
from textbooks.store import data
from textbooks.store.atomic import atomic_file

ClassifierName = Literal["random-forest", "logistic-regression", "hist-gradient-boosting"]
MODEL, META = "model.joblib", "classifier.json"
CURVE_THRESHOLDS = tuple(round(step / 20, 2) for step in range(1, 20))  # 0.05 ... 0.95


def make_classifier(name: ClassifierName, seed: int, trees: int) -> Any:
    """An unfitted classifier: a random forest (the paper's), logistic regression on standardised features, or
    histogram gradient boosting; `trees` is the forest's size and the boosting's iterations."""
    if name == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=trees, random_state=seed, class_weight="balanced")
    if name == "logistic-regression":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=trees, random_state=seed, class_weight="balanced")


def positive_scores(model: Any, features: np.ndarray) -> np.ndarray:
    """The positive class's probability for each row."""
    if len(features) == 0:
        return np.zeros(0, np.float64)
    column = list(model.classes_).index(True)
    return model.predict_proba(features)[:, column].astype(np.float64)


def held_out_measures(truth: np.ndarray, scores: np.ndarray, cutoff: float = 0.5) -> dict:
    """Precision, recall, F1 (at `cutoff`), ROC-AUC, the confusion matrix and a compact precision-recall curve:
    at each threshold, the precision, the recall and the share of rows scored at or above it."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    truth = np.asarray(truth, bool)
    predicted = scores >= cutoff
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
    (tn, fp), (fn, tp) = confusion_matrix(truth, predicted, labels=[False, True]).tolist()
    curve = []
    for threshold in CURVE_THRESHOLDS:
        kept = scores >= threshold
        hits = int((kept & truth).sum())
        curve.append({"threshold": threshold, "precision": round(hits / kept.sum(), 4) if kept.any() else None,
                      "recall": round(hits / truth.sum(), 4), "kept": round(float(kept.mean()), 4)})
    return {"rows": int(len(truth)), "positives": int(truth.sum()), "cutoff": cutoff,
            "precision": round(float(precision), 4), "recall": round(float(recall), 4), "f1": round(float(f1), 4),
            "roc_auc": round(float(roc_auc_score(truth, scores)), 4),
            "average_precision": round(float(average_precision_score(truth, scores)), 4),
            "confusion_matrix": {"true_negative": tn, "false_positive": fp, "false_negative": fn,
                                 "true_positive": tp},
            "precision_recall_curve": curve}


def save_classifier(model: Any, meta: dict, folder: Path) -> None:
    """Write `model.joblib`, then `classifier.json` (its presence means the folder is whole)."""
    import joblib
    import sklearn

    with atomic_file(Path(folder) / MODEL) as tmp:
        joblib.dump(model, tmp)
    data.write_json({**meta, "sklearn": sklearn.__version__}, Path(folder) / META)


def classifier_folder(path: str | Path) -> Path:
    """The saved classifier `path` names: itself, or the `classifier/` of a classify output."""
    path = Path(path)
    for candidate in (path, path / "classifier"):
        if (candidate / META).is_file() and (candidate / MODEL).is_file():
            return candidate
    raise UserError(f"classify: no saved classifier in {path} (expected {META} and {MODEL}, or a classify output "
                    "folder with classifier/); give the folder an earlier `textbooks classify` wrote")


def read_classifier_meta(path: str | Path) -> dict:
    return data.read_json(classifier_folder(path) / META)


def load_classifier(path: str | Path) -> Any:
    import joblib

    return joblib.load(classifier_folder(path) / MODEL)
