"""The training loop of both stages of the paper: pretraining on CodeTextbook, finetuning on CodeExercises.

    textbooks train --input runs/x/tokens --model tiny --out runs/x/pretrain
    textbooks train --input runs/x/exercise-tokens --phase finetune --init runs/x/pretrain --out runs/x/finetune
    torchrun --standalone --nproc_per_node 8 -m textbooks train --input TOKENS --model phi-1 --out runs/phi-1

`train()` runs the same plainly and under torchrun. Each optimizer step takes `batch_size` packed windows,
cut into micro-batches whose gradients accumulate (DDP reduces only on the last one); the gradient norm is
clipped, AdamW steps with the stage's linear warm-up and decay, and a line goes to OUT/log.jsonl. Every
`eval_every` steps the fixed validation windows are scored (OUT/best/ keeps the lowest), every
`checkpoint_every` steps a checkpoint is written, and both happen at the last step. On the CPU a run is
deterministic: a run killed and resumed logs the same losses, bit for bit, and ends with the same weights as
one that was never interrupted (tests/test_train_resume.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from textbooks.evaluate.loss import token_loss_totals
from textbooks.store import data
from textbooks.train import checkpoint, distributed
from textbooks.train.config import TrainConfig
from textbooks.train.data import DataPosition, TrainWindows, validation_batches
from textbooks.train.logs import LOG, RUN_ID, TENSORBOARD, WANDB, Logs, open_logs
from textbooks.train.metrics import peak_flops_per_second, peak_memory_bytes, truncate_log
from textbooks.train.plan import ModelSpec, Plan, plan_run
from textbooks.train.schedule import learning_rate

SUMMARY = "summary.json"


def train(config: TrainConfig, data_dir: Path, out: Path, say: Callable[[str], None] = print,
          resume: bool = False) -> dict:
    """Train into `out` from the token data in `data_dir`; continue from the last checkpoint when `resume`.

    Every setting is checked before any model is built. Returns the summary (also written to OUT/summary.json).
    """
    world = distributed.world_from_env()
    plan = plan_run(config, Path(data_dir), Path(out), world, resume)
    started = distributed.start(world, plan.device)
    try:
        summary = Trainer(plan, say if world.is_main else lambda message: None).run()
        # Every rank waits for rank 0's last files, so that all leave the group together: a rank that tore gloo
        # down while another still wrote its final checkpoint was seen to abort at exit (SIGABRT) on 2 loaded cores.
        distributed.barrier()
        return summary
    finally:
        distributed.stop(started)


def build_model(spec: ModelSpec, resume_from: Path | None, device: torch.device) -> nn.Module:
    """The model to train, in fp32 on `device`: from the checkpoint when resuming, else as `spec` says. A sharded
    checkpoint's weights are loaded later, into the parallelized model (`Trainer._restore`)."""
    from textbooks.model.io import is_sharded, load_model, load_model_config
    from textbooks.model.phi import Phi

    if spec.kind == "hf":
        from textbooks.train.hf_causal import CausalLM

        return CausalLM.load(resume_from or spec.source).to(device)
    if resume_from is not None and is_sharded(resume_from):
        with torch.device(device):
            return Phi(load_model_config(resume_from))
    if resume_from is not None:
        return load_model(resume_from, device=device)
    if spec.kind == "preset":
        with torch.device(device):
            return Phi(spec.config)
    if spec.kind == "folder":
        loaded = load_model(Path(spec.source), device=device)
    else:
        from textbooks.model.hf import import_hf

        loaded = import_hf(spec.source)[0].to(device)
    if loaded.config == spec.config:
        return loaded
    with torch.device("meta"):  # the same weights under other dropouts
        model = Phi(spec.config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    return model


def make_optimizer(model: nn.Module, plan: Plan) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases and LayerNorms); fused kernels on CUDA."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    groups = [{"params": [p for p in parameters if p.ndim >= 2], "weight_decay": plan.hp.weight_decay},
              {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0}]
    config = plan.config
    return torch.optim.AdamW(groups, lr=plan.hp.lr, betas=tuple(config.betas), eps=config.eps,
                             fused=True if plan.device.type == "cuda" else None)


class Trainer:
    """One run's model, optimizer, data and position, and the loop that moves them on."""

    def __init__(self, plan: Plan, say: Callable[[str], None]) -> None:
        self.plan, self.say, self.config, self.hp, self.world = plan, say, plan.config, plan.hp, plan.world
        self.out, self.device = plan.out, plan.device
        self._prepare_folder()
        torch.manual_seed(self.config.seed)  # the same initial weights on every rank
        self.model = build_model(plan.model, plan.resume_from, self.device).train()
        self.parameters = self.model.num_parameters()
        self.flops_per_token = self.model.flops_per_token(self.config.seq_len)
        self.train_module = distributed.parallelize(self.model, self.config.compile, self.config.fsdp,
                                                    self.world, self.device, self.config.activation_checkpointing)
        self.sharded = self.config.checkpoint_format == "sharded"
        self.optimizer = make_optimizer(self.model, plan)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=plan.precision == "fp16")
        rank, size = self.world.rank, self.world.world_size
        self.windows = TrainWindows(plan.tokens.split("train"), self.config.seq_len, self.hp.batch_size,
                                    self.config.micro_batch_size, self.config.seed, rank, size)
        self.val_batches = validation_batches(plan.tokens.split("val"), self.config.seq_len,
                                              self.config.eval_windows, self.config.micro_batch_size, rank, size)
        self.step, self.best_val_loss, self.best_step = 0, math.inf, None
        self.last_val_loss, self.train_seconds = None, 0.0
        self.peak_flops = peak_flops_per_second(self.device, plan.autocast_dtype or torch.float32)
        for seeded in (torch.manual_seed, random.seed, np.random.seed):  # dropout differs between ranks
            seeded(self.config.seed + rank)
        if plan.resume_from is not None:
            self._restore(plan.resume_from, plan.resume_state)
        self.log = self._open_logs() if self.world.is_main else None

    def _open_logs(self) -> Logs:
        """log.jsonl and the backends of the `log` setting; their config: the settings, as in trainer.json."""
        resume_step = self.plan.resume_state["step"] if self.plan.resume_from is not None else None
        config = {**self.config.model_dump(mode="json"), "resolved": dataclasses.asdict(self.hp),
                  "parameters": self.parameters}
        return open_logs(self.out, self.config.log, f"{self.out.parent.name}/{self.out.name}", config, resume_step,
                         self.say)

    def _prepare_folder(self) -> None:
        """Rank 0 clears what a killed run left: unfinished checkpoints, and log lines after the resume point."""
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for removed in checkpoint.clean_unfinished(self.out):
                self.say(f"train: removed {removed}, left unfinished by a run that was killed or failed")
            if self.plan.resume_from is None:
                (self.out / LOG).unlink(missing_ok=True)
                (self.out / SUMMARY).unlink(missing_ok=True)
                (self.out / WANDB / RUN_ID).unlink(missing_ok=True)  # a new run, not the one started before
                shutil.rmtree(self.out / TENSORBOARD, ignore_errors=True)
                checkpoint.remove_folder(self.out / checkpoint.BEST)
            else:
                truncate_log(self.out / LOG, self.plan.resume_state["step"])
        distributed.barrier()

    def _restore(self, folder: Path, state: dict) -> None:
        """Optimizer (and a sharded checkpoint's weights), loss scale, RNG states, data position, step and
        best-so-far from the checkpoint."""
        from textbooks.model.io import SHARDED, is_sharded

        if is_sharded(folder):
            distributed.load_sharded(self.model, self.optimizer, folder / SHARDED)
        else:
            distributed.load_optimizer_state(self.model, self.optimizer,
                                             checkpoint.load_torch(folder / checkpoint.OPTIMIZER), self.config.fsdp)
        extra = checkpoint.load_torch(folder / checkpoint.TRAINER_STATE)
        if extra["scaler"]:
            self.scaler.load_state_dict(extra["scaler"])
        if len(extra["rng"]) == self.world.world_size:
            checkpoint.set_rng_state(extra["rng"][self.world.rank])
        else:  # another world size (a sharded checkpoint): new dropout streams, the same on every such resume
            checkpoint.seed_rng(self.config.seed, self.world.rank, state["step"])
        self.windows.position = DataPosition(**state["data_position"])
        self.step, self.train_seconds = state["step"], state["train_seconds"]
        self.last_val_loss = state["last_val_loss"]
        self.best_val_loss = math.inf if state["best_val_loss"] is None else state["best_val_loss"]
        self.best_step = state["best_step"]
        best = checkpoint.read_best(self.out)
        if best and best["step"] > self.step and best["val_loss"] <= self.best_val_loss:
            # Written after this checkpoint by the run that was killed: a real model with its real loss.
            self.best_val_loss, self.best_step = best["val_loss"], best["step"]
        self.say(f"train: resuming from {folder} at step {self.step:,}")

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = self.plan.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def run(self) -> dict:
        self._announce()
        progress = tqdm(total=self.hp.max_steps, initial=self.step, unit="step", desc="train",
                        disable=None if self.world.is_main else True)
        try:
            while self.step < self.hp.max_steps:
                record = self._train_step()
                self._write(record)
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:,.0f}")
                last = self.step == self.hp.max_steps
                if self.step % self.hp.eval_every == 0 or last:
                    self._validate()
                if self.step % self.config.checkpoint_every == 0 or last:
                    self._save_checkpoint()
        finally:
            progress.close()
            if self.log:
                self.log.close()
        return self._summary()

    def _announce(self) -> None:
        plan, config = self.plan, self.config
        val_windows = sum(len(inputs) for inputs, _ in self.val_batches) * self.world.world_size
        self.say(f"train: {self.parameters:,} parameters ({plan.model.kind}), {self.windows.count:,} training "
                 f"windows of {config.seq_len} tokens and {val_windows:,} for validation; {self.hp.max_steps:,} "
                 f"steps of {self.hp.batch_size} sequences = {plan.accumulation} x {config.micro_batch_size} on "
                 f"each of {self.world.world_size} process(es); {self.device} {plan.precision}")

    def _train_step(self) -> dict:
        started = time.perf_counter()
        batches = [(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
                   for x, y in self.windows.next_batch()]
        data_wait = time.perf_counter() - started
        lr = learning_rate(self.step, self.hp.lr, self.hp.warmup_steps, self.hp.decay_steps, self.config.min_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        for index, (inputs, targets) in enumerate(batches):
            with distributed.gradient_sync(self.train_module, sync=index == len(batches) - 1):
                with self.autocast():
                    _, loss = self.train_module(inputs, targets)
                self.scaler.scale(loss / len(batches)).backward()
            total += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip or math.inf)
        if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP
            grad_norm = grad_norm.full_tensor()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        loss_value = (distributed.sum_across(total) / (len(batches) * self.world.world_size)).item()
        seconds = time.perf_counter() - started
        self.step += 1
        self.train_seconds += seconds
        tokens_per_s = self.hp.batch_size * self.config.seq_len / seconds
        mfu = (self.flops_per_token * tokens_per_s / (self.peak_flops * self.world.world_size)
               if self.peak_flops else None)
        return {"step": self.step, "loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
                "tokens_per_s": tokens_per_s, "mfu": mfu, "data_wait_s": data_wait, "step_s": seconds,
                "peak_mem_bytes": peak_memory_bytes(self.device), "tokens_seen": self.tokens_seen}

    @property
    def tokens_seen(self) -> int:
        return self.step * self.hp.batch_size * self.config.seq_len

    def _write(self, record: dict) -> None:
        if self.log:
            self.log.write(record)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean next-token loss over every token of the fixed validation windows of all processes; the windows
        and the mean are the same whatever micro_batch_size cuts them into (fp64 sums of per-token losses)."""
        self.model.eval()
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)
        for inputs, targets in self.val_batches:
            with self.autocast():
                logits = self.model(inputs.to(self.device))
            totals += token_loss_totals(logits, targets.to(self.device))
        self.model.train()
        loss_sum, tokens = distributed.sum_across(totals).tolist()
        return loss_sum / tokens

    def _validate(self) -> None:
        val_loss = self.evaluate()
        self.last_val_loss = val_loss
        self._write({"kind": "val", "step": self.step, "val_loss": val_loss})
        improved = val_loss < self.best_val_loss
        if improved:
            self.best_val_loss, self.best_step = val_loss, self.step
            if self.sharded:
                shards = distributed.sharded_state(self.model)
                checkpoint.write_best(self.out, self._describe_sharded_model, self.step, val_loss,
                                      self._shard_writer(shards), self.world.is_main)
            else:
                full_state = self._full_model_state()
                if self.world.is_main:
                    checkpoint.write_best(self.out, lambda folder: self._write_model(folder, full_state), self.step,
                                          val_loss)
            distributed.barrier()
        self.say(f"train: step {self.step:,}: validation loss {val_loss:.4f}{' (best so far)' if improved else ''}")

    def _full_model_state(self) -> dict | None:
        """Under FSDP the gathered weights (every rank takes part); else None: the model itself is whole."""
        return distributed.full_model_state(self.model, fsdp=True) if self.config.fsdp else None

    def _write_model(self, folder: Path, full_state: dict | None) -> None:
        from textbooks.model.io import save_model
        from textbooks.model.phi import Phi

        tokenizer_dir = self.plan.tokens.tokenizer_dir
        if not isinstance(self.model, Phi):
            self.model.save(folder, full_state, tokenizer_dir)
            return
        model = self.model
        if full_state is not None:
            with torch.device("meta"):
                model = Phi(self.model.config)
            model.load_state_dict(full_state, assign=True)
        save_model(model, folder, tokenizer_dir)

    def _describe_sharded_model(self, folder: Path) -> None:
        from textbooks.model.io import describe_sharded_model

        describe_sharded_model(self.model.config, folder, self.plan.tokens.tokenizer_dir)

    @staticmethod
    def _shard_writer(state: dict) -> Callable[[Path], None]:
        from textbooks.model.io import SHARDED

        return lambda folder: distributed.save_sharded(state, folder / SHARDED)

    def _save_checkpoint(self) -> None:
        """Rank 0 writes the folder; for a sharded checkpoint every rank first writes its shards into it."""
        rng_states = distributed.gather_objects(checkpoint.rng_state(), self.world)
        if self.sharded:
            write_shards = self._shard_writer(distributed.sharded_state(self.model, self.optimizer))
            write_state = self._describe_sharded_model
        else:
            full_state = self._full_model_state()
            optimizer_state = distributed.full_optimizer_state(self.model, self.optimizer, self.config.fsdp)
            write_shards = None

            def write_state(folder: Path) -> None:
                self._write_model(folder, full_state)
                checkpoint.save_torch(optimizer_state, folder / checkpoint.OPTIMIZER)

        def contents(folder: Path) -> None:
            write_state(folder)
            checkpoint.save_torch({"scaler": self.scaler.state_dict(), "rng": rng_states},
                                  folder / checkpoint.TRAINER_STATE)
            data.write_json(self._trainer_state(), folder / checkpoint.TRAINER_JSON)

        folder = checkpoint.write_checkpoint(self.out, self.step, contents, write_shards, self.world.is_main)
        if self.world.is_main:
            checkpoint.prune(self.out, self.config.keep_checkpoints)
            self.say(f"train: step {self.step:,}: checkpoint {folder}")
        distributed.barrier()

    def _trainer_state(self) -> dict:
        position = self.windows.position
        return {"step": self.step, "data_position": {"epoch": position.epoch, "index": position.index},
                "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
                "best_step": self.best_step, "last_val_loss": self.last_val_loss,
                "train_seconds": self.train_seconds, "world_size": self.world.world_size,
                "config": self.config.model_dump(mode="json"), "data": self.plan.data_identity}

    def _summary(self) -> dict:
        summary = {
            "final_step": self.step, "final_val_loss": self.last_val_loss,
            "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
            "best_step": self.best_step, "tokens_seen": self.tokens_seen,
            "tokens_per_s": self.tokens_seen / self.train_seconds if self.train_seconds else None,
            "seconds": self.train_seconds, "parameters": self.parameters,
            "val_unigram_entropy": self.plan.tokens.val_unigram_entropy,
            "world_size": self.world.world_size, "device": str(self.device), "precision": self.plan.precision,
        }
        if self.world.is_main:
            data.write_json(summary, self.out / SUMMARY)
        distributed.barrier()  # no rank reports the run finished before summary.json is there
        return summary
