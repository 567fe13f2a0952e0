"""Throughput as an output: tokens/s, MFU, data wait and peak memory per step, one JSON line each.

MFU is model FLOPs per second (`flops_per_token` x tokens/s, PaLM's definition) over the device's dense peak
for the training dtype, from the table below; it is null where the peak is unknown (CPUs, unlisted GPUs) and
the report shows "n/a" rather than a guess.

    OUT/log.jsonl   {"step": 12, "loss": 3.91, "lr": 0.0009, "tokens_per_s": 5321.0, "mfu": null, ...}
                    {"kind": "val", "step": 100, "val_loss": 3.2}
"""

from __future__ import annotations

import json
import re
import resource
import sys
from pathlib import Path

import torch

from textbooks.store import data

# Dense (no 2:4 sparsity) peak FLOP/s from NVIDIA's data sheets: tensor-core bf16 / fp16, and plain fp32 (no
# TF32). Keyed by the names torch.cuda.get_device_name() contains as whole words ("NVIDIA H200 NVL",
# "NVIDIA GH200 480GB", "NVIDIA A100-SXM4-80GB"); the longest name found wins, so "H200 NVL" beats "H200",
# "GH200" is not an "H200" and "A10" does not catch "A100". None: the device has no fast path for that dtype.
PEAK_FLOPS: dict[str, dict[str, float | None]] = {
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    "H100 NVL": {"bf16": 835e12, "fp16": 835e12, "fp32": 60e12},
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12},
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},  # SXM: "NVIDIA H200"
    "H200 NVL": {"bf16": 835e12, "fp16": 835e12, "fp32": 60e12},
    "GH200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},  # the Hopper GPU of Grace Hopper
    "H800": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H800 PCIe": {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12},
    "B200": {"bf16": 2250e12, "fp16": 2250e12, "fp32": None},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},  # SXM and PCIe alike
    "A10G": {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12},  # no A10G sheet is published: the A10's
    "A10": {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12},
    "A40": {"bf16": 149.7e12, "fp16": 149.7e12, "fp32": 37.4e12},
    "RTX A6000": {"bf16": 154.8e12, "fp16": 154.8e12, "fp32": 38.7e12},
    "L40S": {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12},
    "L40": {"bf16": 181e12, "fp16": 181e12, "fp32": 90.5e12},
    "L4": {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12},
    "RTX 4090": {"bf16": 165.2e12, "fp16": 165.2e12, "fp32": 82.6e12},  # fp32 accumulation, as torch uses
    "RTX 3090": {"bf16": 71e12, "fp16": 71e12, "fp32": 35.6e12},
    "V100": {"bf16": None, "fp16": 125e12, "fp32": 15.7e12},
    "T4": {"bf16": None, "fp16": 65e12, "fp32": 8.1e12},
}
DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def peak_flops_for_name(device_name: str, dtype: torch.dtype) -> float | None:
    """The table's dense peak for a CUDA device name and dtype, from the longest table name that the device
    name contains as whole words; None for an unknown name or dtype."""
    dtype_name = DTYPE_NAMES.get(dtype)
    found = [name for name in PEAK_FLOPS
             if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", device_name, flags=re.IGNORECASE)]
    if not found or dtype_name is None:
        return None
    return PEAK_FLOPS[max(found, key=len)][dtype_name]


def peak_flops_per_second(device: torch.device, dtype: torch.dtype) -> float | None:
    """Dense peak FLOP/s of `device` computing in `dtype`; None on CPU and on devices missing from the table."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return peak_flops_for_name(torch.cuda.get_device_name(device), dtype)


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA: the most memory tensors held so far. CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class JsonlLog:
    """Appends one JSON object per line, each written and closed at once: a killed run loses at most that line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing is held open between lines."""


def read_jsonl(path: Path) -> list[dict]:
    """Every whole line of a JSONL log (a line torn by a kill is skipped)."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_log(path: Path, step: int) -> None:
    """Keep the lines of steps up to `step`: a resumed run then logs what an uninterrupted run would have."""
    kept = [record for record in read_jsonl(path) if record.get("step", 0) <= step]
    data.write_bytes("".join(json.dumps(record) + "\n" for record in kept).encode("utf-8"), Path(path))
