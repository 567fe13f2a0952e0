"""The dedup stage's section: how large the near-duplicate clusters were, counting kept and dropped rows."""

from __future__ import annotations

from textbooks.report import fmt, plots, read
from textbooks.report.blocks import Figure, Section, Table
from textbooks.report.stages import StageRun

CLUSTER_COLUMN = "minhash_cluster"


def near_duplicate_clusters(stage: StageRun) -> Section | None:
    sizes = read.cluster_sizes([stage.path, stage.dropped], CLUSTER_COLUMN)
    if not len(sizes):
        return None
    shared = sizes[sizes > 1]
    rows = [
        ["clusters", fmt.count(len(sizes))],
        ["clusters of one row", fmt.count(len(sizes) - len(shared))],
        ["clusters of two rows or more", fmt.count(len(shared))],
        ["rows in those", fmt.count(int(shared.sum()))],
        ["largest cluster", fmt.count(int(sizes.max()))],
    ]
    png = plots.cluster_histogram(stage.name, sizes)
    return Section("Near-duplicate clusters", [
        Table(["", "value"], rows, "lr"),
        Figure("clusters", png, f"Sizes of the {CLUSTER_COLUMN} clusters over kept and dropped rows."),
    ])
