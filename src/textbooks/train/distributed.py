"""Processes and parallelism: the same `textbooks train` command runs alone or on every rank under torchrun.

    torchrun --standalone --nproc_per_node 8 -m textbooks train --input TOKENS --out runs/x --fsdp

torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) says where a process stands; without it the world is one
process and no process group is made. `parallelize` wraps the plain model in a fixed order, as torchtitan does:
activation checkpointing per decoder block (torch's composable `checkpoint`, which keeps parameter names), then
torch.compile (per decoder block under FSDP or activation checkpointing, so that each sharded or recomputed unit
is one compiled graph; a whole-model graph fails to recompute checkpointed blocks), then FSDP2 (`fully_shard`
per decoder block, then the root) or DDP. The model itself never imports torch.distributed.

Rank 0 alone writes logs and full checkpoints; under FSDP every rank takes part in gathering full state dicts
for it. Sharded checkpoints (`sharded_state`, `save_sharded`, `load_sharded`) are torch.distributed.checkpoint
folders that every rank writes its own part of, and that any number of processes reads back, resharded.
"""

from __future__ import annotations

import os
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from textbooks.errors import UserError
from textbooks.store.sharded import single_process_is_meant

# Rank 0 writes a checkpoint of phi-1 (about 17 GB with the optimizer) while the others wait at a barrier.
GROUP_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False  # started by torchrun (or another launcher that sets its variables)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment; one process when it is not there."""
    if "WORLD_SIZE" not in os.environ:
        return World()
    return World(rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ["WORLD_SIZE"]),
                 local_rank=int(os.environ.get("LOCAL_RANK", "0")), launched=True)


def training_device(requested: str, world: World) -> torch.device:
    """The device this process trains on: its local GPU under torchrun, else GPU 0, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for but torch sees no CUDA device; use --device cpu or auto")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", world.local_rank)


def start(world: World, device: torch.device) -> bool:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU); True if this call made it."""
    if not world.launched or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=GROUP_TIMEOUT)
    return True


def stop(started: bool) -> None:
    if started and dist.is_initialized():
        dist.destroy_process_group()


def grouped() -> bool:
    return dist.is_available() and dist.is_initialized()


def decoder_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks: the units FSDP shards one at a time and compile turns into one graph each."""
    from textbooks.model.phi import Phi

    if isinstance(model, Phi):
        return list(model.model.layers)
    return model.decoder_blocks()


def parallelize(model: nn.Module, compile: bool, fsdp: bool, world: World, device: torch.device,
                activation_checkpointing: bool = False) -> nn.Module:
    """Checkpoint activations, compile, then shard (FSDP2) or replicate (DDP); returns the module to call for
    training steps.

    `model` is changed in place (checkpointed and compiled blocks, sharded parameters), so it stays the module
    to evaluate and to save; under DDP the returned wrapper is what synchronises gradients. Checkpointed blocks
    replay their random state when recomputed: the same dropout masks, losses and gradients as without.
    """
    blocks = decoder_blocks(model)
    if activation_checkpointing:
        from torch.distributed._composable import checkpoint

        for block in blocks:
            checkpoint(block)
    if compile:
        for module in blocks if fsdp or activation_checkpointing else [model]:
            module.compile()
    if fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # FSDP2 warns that a block returns views (Phi's key/value cache, the root's logits): it matters only
        # for in-place changes to them, and nothing here makes any.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
        mesh = init_device_mesh(device.type, (world.world_size,))
        for block in blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    if world.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model


def gradient_sync(model: nn.Module, sync: bool) -> AbstractContextManager:
    """Reduce gradients only on the last micro-step of an accumulation (DDP `no_sync`, FSDP2's switch)."""
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel) and not sync:
        return model.no_sync()
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(sync)
    return nullcontext()


def sum_across(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over all processes (unchanged when there is one)."""
    if grouped():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every process's `obj`, by rank."""
    if not grouped():
        return [obj]
    gathered: list[Any] = [None] * world.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    if grouped():
        dist.barrier()


def full_model_state(model: nn.Module, fsdp: bool) -> dict[str, torch.Tensor]:
    """The whole state dict on the CPU (under FSDP gathered from the shards; every rank must call this)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, fsdp: bool) -> dict:
    """The optimizer's whole state (under FSDP gathered, keyed by parameter name; every rank must call this)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(model, optimizer, options=options)
    return optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict, fsdp: bool) -> None:
    """Restore what `full_optimizer_state` gave (under FSDP each rank keeps its shard of it)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                                 options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


def sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """{"model": ..., "optimizer": ...} as torch.distributed.checkpoint saves them, keyed by parameter name: under
    FSDP this rank's shards (DTensors, nothing gathered), else the whole tensors (written once, not per rank)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    if optimizer is None:
        return {"model": get_model_state_dict(model)}
    model_state, optimizer_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optimizer_state}


def save_sharded(state: dict[str, Any], folder: Path) -> None:
    """Write `state` into `folder` with every rank together (each its own file; rank 0 the index, last)."""
    import torch.distributed.checkpoint as dcp

    with single_process_is_meant():
        dcp.save(state, checkpoint_id=str(folder), no_dist=not grouped())


def load_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Restore what `save_sharded(sharded_state(model, optimizer))` wrote, on this run's processes and sharding
    (any number of them: each reads the parts of the saved tensors its shards cover)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    # get_state_dict makes a fresh optimizer's state (one step at lr 0): places for the saved tensors to fill.
    state = sharded_state(model, optimizer)
    with single_process_is_meant():
        dcp.load(state, checkpoint_id=str(folder), no_dist=not grouped())
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
