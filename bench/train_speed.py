"""Training speed: our `Phi` against transformers' `PhiForCausalLM` at the same config, in one run.

    python bench/train_speed.py                  # tiny preset, vocab 8192, batch 8 x 256 tokens, CPU, fp32
    python bench/train_speed.py --device cuda --preset phi-1-small --seq-len 2048 --batch 8 --dtype bf16
    python bench/train_speed.py --device cuda --preset phi-1 --seq-len 2048 --batch 4 --dtype bf16 --compile \
        --record bench/RESULTS.md       # the figure `textbooks run --dry-run` turns into GPU-hours

One training step is forward, loss, backward and an AdamW step, in train mode with the preset's dropouts (the
paper trains with 0.1), eager (no torch.compile). Both models start from the same weights and see the same
random token batch; ours gets the targets shifted by one, transformers gets `labels` and shifts them itself,
so both compute the same loss over the same positions (checked before timing, in eval mode).

After warm-up, each round times `--steps` steps of each model, the order flipping every round. A shared
machine's other tenants slow whichever model is running, so the figures are medians over rounds and the ratio
is the median of the per-round ratios (each round's two measurements lie close together in time); the share
of the CPUs that other processes used during the timed rounds is printed with them, as is each model's rate in
tokens per CPU-second of this process, which other tenants disturb less. With --device cuda the MFU is printed
too (`textbooks.train.metrics.peak_flops_per_second` and `Phi.flops_per_token`; "n/a" where unknown).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import transformers
from machine_load import Timings, busy_and_total_ticks
from transformers import PhiForCausalLM

from textbooks.model import ModelConfig, Phi, preset, to_hf_config

Step = Callable[[], torch.Tensor]
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")




def training_step(forward: Callable[[], torch.Tensor], model: torch.nn.Module, dtype: torch.dtype,
                  device: torch.device) -> Step:
    """One forward + backward + AdamW step; bf16 runs under autocast with fp32 weights, as a trainer would."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()

    def step() -> torch.Tensor:
        with autocast:
            loss = forward()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    return step


def timed_round(step: Step, steps: int, device: torch.device, timings: Timings) -> None:
    """Run `steps` steps and add their wall time, CPU time and the other processes' CPU ticks to `timings`."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    before, cpu_started, started = busy_and_total_ticks(), time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu, after = time.perf_counter() - started, time.process_time() - cpu_started, busy_and_total_ticks()
    timings.wall.append(wall)
    timings.cpu.append(cpu)
    if before is not None and after is not None:
        timings.others_ticks += max(0, after[0] - before[0] - round(cpu * TICKS_PER_SECOND))
        timings.total_ticks += after[1] - before[1]


def mfu_text(model: Phi, seq_len: int, tokens_per_second: float, device: torch.device, dtype: torch.dtype) -> str:
    try:
        from textbooks.train.metrics import peak_flops_per_second
    except ImportError:
        return "n/a"
    peak = peak_flops_per_second(device, dtype)
    if not peak:
        return "n/a"
    return f"{model.flops_per_token(seq_len) * tokens_per_second / peak:.1%}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--vocab-size", type=int, default=8192, help="embedding rows for presets without one")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="steps per model per timed round")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds, alternating which model goes first")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(ours), as an extra line")
    parser.add_argument("--record", metavar="RESULTS_MD", default=None,
                        help="append ours' tokens/s and MFU (compiled when --compile) to the file's table \"GPU "
                             "training throughput\", which `textbooks run --dry-run` reads for GPU-hours")
    return parser.parse_args()


def record(path: str, args: argparse.Namespace, tokens_per_s: float, mfu: str, device: torch.device) -> None:
    """One row of the table `textbooks.pipeline.dryrun.recorded_throughput` reads; the section is made if new."""
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    row = (f"| {time.strftime('%Y-%m-%d')} | {machine}, torch {torch.__version__} | {args.preset} | {args.seq_len} | "
           f"{args.dtype} | {tokens_per_s:,.0f} | {mfu} |\n")
    with open(path, encoding="utf-8") as file:
        text = file.read()
    heading = "### GPU training throughput"
    if heading not in text:
        text = text.rstrip("\n") + (f"\n\n{heading}\n\n`python bench/train_speed.py --device cuda --dtype bf16 "
                                     "--seq-len 2048 --record bench/RESULTS.md` (ours, one GPU; batch as given)\n\n"
                                     "| date | machine | preset | seq | dtype | tokens/s per GPU | MFU |\n"
                                     "|---|---|---|---|---|---|---|\n")
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    end = len(text) if end < 0 else end + 1
    section = text[start:end].rstrip("\n") + "\n" + row
    with open(path, "w", encoding="utf-8") as file:
        file.write(text[:start] + section + ("\n" + text[end:] if end < len(text) else ""))


def main() -> None:
    args = parse_args()
    if args.record and args.device == "cpu":
        raise SystemExit("--record writes the GPU throughput table: run it with --device cuda")
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    overrides = {"vocab_size": args.vocab_size} if preset(args.preset).vocab_size is None else {}
    config = preset(args.preset, **overrides)
    torch.manual_seed(0)
    ours = Phi(config).to(device)
    theirs = PhiForCausalLM(to_hf_config(config)).to(device)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    tokens = torch.randint(0, config.vocab_size, (args.batch, args.seq_len), device=device)
    targets = torch.cat((tokens[:, 1:], torch.full_like(tokens[:, :1], -100)), dim=1)

    def ours_loss() -> torch.Tensor:
        return ours(tokens, targets)[1]

    def theirs_loss() -> torch.Tensor:
        return theirs(input_ids=tokens, labels=tokens).loss

    with torch.no_grad():
        ours.eval(), theirs.eval()
        print(f"loss at init (eval): ours {ours_loss().item():.6f}  transformers {theirs_loss().item():.6f}")
        ours.train(), theirs.train()

    steps = {"ours": training_step(ours_loss, ours, dtype, device),
             "transformers": training_step(theirs_loss, theirs, dtype, device)}
    if args.compile:
        compiled = torch.compile(ours)
        steps["ours, compiled"] = training_step(lambda: compiled(tokens, targets)[1], ours, dtype, device)
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    timings = {name: Timings() for name in steps}
    names = list(steps)
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            timed_round(steps[name], args.steps, device, timings[name])
    report(args, config, ours, timings, device, dtype)


def report(args: argparse.Namespace, config: ModelConfig, ours: Phi, timings: dict[str, Timings], device: torch.device,
           dtype: torch.dtype) -> None:
    tokens_per_round = args.steps * args.batch * args.seq_len
    print(f"{args.preset} preset, vocab {config.vocab_size:,}, {ours.num_parameters():,} parameters; "
          f"batch {args.batch} x {args.seq_len} tokens; {args.device} {args.dtype}, {args.threads} threads; "
          f"{args.rounds} rounds x {args.steps} steps per model after {args.warmup} warm-up steps each")
    print(f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}")
    for name, timing in timings.items():
        rate = tokens_per_round / statistics.median(timing.wall)
        cpu_rate = tokens_per_round / statistics.median(timing.cpu)
        others = f"{timing.others_ticks / timing.total_ticks:.0%}" if timing.total_ticks else "n/a"
        mfu = f"  MFU {mfu_text(ours, args.seq_len, rate, device, dtype)}" if device.type == "cuda" else ""
        print(f"{name:<16} {rate:8,.0f} tokens/s (median round; best {tokens_per_round / min(timing.wall):,.0f})  "
              f"{cpu_rate:7,.0f} tokens per CPU-second  other processes used {others} of the CPUs{mfu}")
    for name in [name for name in timings if name != "transformers"]:
        paired = [theirs / mine for mine, theirs in zip(timings[name].wall, timings["transformers"].wall)]
        cpu_ratio = statistics.median(timings["transformers"].cpu) / statistics.median(timings[name].cpu)
        quartiles = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
        print(f"ratio {name} / transformers: {statistics.median(paired):.2f}x tokens/s (median of per-round ratios, "
              f"quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}); {cpu_ratio:.2f}x per CPU-second")
    if args.record:
        name = "ours, compiled" if "ours, compiled" in timings else "ours"
        rate = tokens_per_round / statistics.median(timings[name].wall)
        record(args.record, args, rate, mfu_text(ours, args.seq_len, rate, device, dtype), device)
        print(f"recorded {name}: {rate:,.0f} tokens/s in {args.record}")


if __name__ == "__main__":
    main()
