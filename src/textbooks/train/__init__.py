"""Training: both stages of the paper (pretraining, finetuning) on packed token data, plainly or under torchrun.

    config.py       TrainConfig: the settings, with each phase's defaults from the paper
    plan.py         every setting checked against the data and the model before any compute
    trainer.py      train(): the loop, validation, best model, summary
    data.py         packed windows in a seeded order that a checkpoint can resume
    schedule.py     linear warm-up, linear decay
    checkpoint.py   atomic checkpoints with a completion marker, pruning, best/
    distributed.py  torchrun's world, compile + FSDP2 / DDP, gathering full state dicts
    metrics.py      tokens/s, MFU (peak FLOPs table), peak memory, log.jsonl
    logs.py         where the step records go: log.jsonl, TensorBoard, Weights & Biases (rank 0)
    hf_causal.py    any transformers causal LM behind the same interface (finetuning other base models)
    step.py         the `train` recipe step and CLI command
"""

from textbooks.train.config import TrainConfig

__all__ = ["TrainConfig"]
