"""`textbooks run RECIPE --dry-run`: what a recipe would read and make, send and cost, before anything runs.

    textbooks run recipes/phi-1.yaml --dry-run

The recipe is loaded and checked as for a run (every step, setting and `@reference`), then each step is
estimated from its settings and from what the steps before it would make; no input is read, no folder is made,
no request is sent, so a recipe whose sources are on the hub or on a cluster is planned on a laptop.

Figures a step cannot know from its settings come from the recipe's `expect:` key on that step (never part of a
fingerprint):

    - stage: ingest
      source: hf
      dataset: bigcode/the-stack-dedup
      expect: {rows: 24_000_000, tokens_per_row: 650}   # what the source holds
    - stage: dedup
      expect: {kept: 0.85}                              # the share of its input rows a step keeps
    - stage: train
      expect: {gpus: 8, tokens_per_s_per_gpu: 18400}    # training throughput (default: bench/RESULTS.md)

Requests and tokens of LLM steps are counted from the prompts the step would send (about four characters a
token, as `textbooks.llm.pricing`), output tokens at the request's `max_tokens` (an upper bound) and cost from
the price table. GPU-hours of training are tokens seen over tokens/s per GPU: the step's `expect`, else the
figure `bench/train_speed.py` recorded for the preset and sequence length (`recorded_throughput`), else the
model's FLOPs at an assumed MFU on the GPU `expect.gpu` names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from textbooks.pipeline.recipe import Recipe, RecipeStep

SYNTH_PROMPTS_BUILT = 2_000  # more rows than this: the prompts of the first ones, scaled to the count


@dataclass
class Flow:
    """What a step's output holds, as far as it can be told: rows, tokens, and whether they are upper bounds."""

    rows: float | None = None
    tokens: float | None = None
    at_most: bool = False

    def scaled(self, share: float | None) -> Flow:
        if share is None:
            return Flow(self.rows, self.tokens, at_most=True)
        return Flow(_times(self.rows, share), _times(self.tokens, share), self.at_most)


@dataclass
class LLMPlan:
    model: str
    requests: int
    prompt_tokens: int
    max_output_tokens: int
    cost_usd: float | None


@dataclass
class StepPlan:
    name: str
    kind: str
    reads: str
    makes: str
    flow: Flow = field(default_factory=Flow)
    llm: list[LLMPlan] = field(default_factory=list)
    tokens_seen: float | None = None  # training: tokens through the model
    gpu_hours: float | None = None
    gpus: int | None = None
    notes: list[str] = field(default_factory=list)


def _times(value: float | None, share: float) -> float | None:
    return None if value is None else value * share


def plan_recipe(recipe: Recipe) -> list[StepPlan]:
    """Each step's plan, in order; reads nothing but the recipe (and bench/RESULTS.md for throughput)."""
    flows: dict[str, Flow] = {}
    plans: list[StepPlan] = []
    for entry in recipe.steps:
        upstream = _upstream(entry, flows)
        plan = StepPlan(entry.name, entry.kind, _reads(entry), entry.makes)
        ESTIMATORS.get(entry.kind, _pass_through)(entry, upstream, plan, flows, recipe)
        expect = entry.expect
        if expect.rows is not None:
            plan.flow.rows, plan.flow.at_most = expect.rows, False
        if expect.tokens_per_row is not None and plan.flow.rows is not None:
            plan.flow.tokens = plan.flow.rows * expect.tokens_per_row
        flows[entry.name] = plan.flow
        plans.append(plan)
    return plans


def _upstream(entry: RecipeStep, flows: dict[str, Flow]) -> Flow:
    if entry.input and entry.input.startswith("@") and entry.input[1:] in flows:
        return flows[entry.input[1:]]
    return Flow()


def _reads(entry: RecipeStep) -> str:
    from textbooks.pipeline.refs import find_refs

    config = entry.config
    if entry.kind == "ingest":
        source = getattr(config, "source", "")
        if source == "hf":
            where = " ".join(str(part) for part in (config.dataset, config.data_dir) if part)
            return f"hub dataset {where}" + (" (streamed)" if config.streaming else "")
        return f"{source} {getattr(config, 'path', '') or ''}".strip()
    names = [entry.input[1:] if entry.input.startswith("@") else entry.input] if entry.input else []
    names += [str(ref) for _, ref in find_refs(config) if ref.step is not None]
    return ", ".join(name for name in names if name) or "nothing"


def _pass_through(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    """A dataset step that keeps some of its input rows: `expect.kept` of them, else at most all."""
    if entry.makes == "dataset":
        plan.flow = upstream.scaled(entry.expect.kept)


def _ingest(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    if entry.expect.rows is None:
        plan.notes.append("rows unknown: set expect.rows (and tokens_per_row) on this step")


def _filter(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    fraction = getattr(entry.config, "fraction", None)
    plan.flow = upstream.scaled(entry.expect.kept if entry.expect.kept is not None else fraction)


def _annotate(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    from textbooks.quality import prompts

    config = entry.config
    rows = config.sample_size if upstream.rows is None else min(config.sample_size, int(upstream.rows))
    per_row = upstream.tokens / upstream.rows if upstream.tokens and upstream.rows else None
    plan.flow = Flow(float(rows), None if per_row is None else rows * per_row, upstream.rows is None)
    judges = [config] + ([config.compare] if config.compare is not None else [])
    for judge in judges:
        if judge.annotator != "llm" or judge.llm is None:
            continue
        if per_row is None:
            plan.notes.append("prompt tokens without the snippets: the input's tokens_per_row is unknown")
        snippet = "x" * int(4 * (per_row or 0))
        text = "".join(str(message["content"]) for message in prompts.messages(snippet, config.max_chars))
        plan.llm.append(_llm_plan(judge.llm, rows, _tokens(text), judge.llm.max_tokens))


def _synth(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    from textbooks.synth.config import make_sampler, messages

    config = entry.config
    plan.flow = Flow(float(config.count), None, at_most=True)  # rows whose code fails are not kept
    if config.llm is None:
        return
    built = min(config.count, SYNTH_PROMPTS_BUILT)
    params = make_sampler(config).many(built)
    prompt_tokens = sum(_tokens("".join(str(m["content"]) for m in messages(config, item, None)))
                        for item in params)
    per_request = prompt_tokens / max(built, 1)
    plan.llm.append(_llm_plan(config.llm, config.count, per_request, config.llm.max_tokens))
    if config.attempts > 1:
        first = plan.llm[-1]
        most = "" if first.cost_usd is None else f", ${first.cost_usd * config.attempts:,.2f}"
        plan.notes.append(f"first attempt only: a failed row is asked again, up to {config.attempts} attempts "
                          f"(at most {first.requests * config.attempts:,} requests{most})")
    if config.count > built:
        plan.notes.append(f"prompt tokens from the first {built:,} prompts, scaled to {config.count:,}")


def _tokenize(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    config = entry.config
    mixture = [(str(source.input), source.weight) for source in config.mixture or []]
    sources = mixture or [(entry.input or "", 1.0)]
    found = [flows.get(source[1:]) if source.startswith("@") else None for source, _ in sources]
    known = [flow.tokens for flow in found if flow is not None and flow.tokens is not None]
    total = None
    if len(known) == len(found):  # a mixture: the most tokens that repeat no source
        weights = sum(weight for _, weight in sources)
        total = min(tokens * weights / weight for tokens, (_, weight) in zip(known, sources))
    if config.tokens is not None:
        plan.flow = Flow(None, float(config.tokens) if total is None else min(float(config.tokens), total))
    else:
        plan.flow = Flow(None, total, any(flow is None or flow.at_most for flow in found))


def _train(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    config = entry.config
    resolved = config.resolved()
    plan.tokens_seen = float(resolved.max_steps * resolved.batch_size * config.seq_len)
    if upstream.tokens:
        plan.notes.append(f"{plan.tokens_seen / upstream.tokens:.1f} epochs of its token data")
    throughput, source = _throughput(entry, _preset(config, recipe), recipe)
    plan.gpus = entry.expect.gpus
    if throughput is None:
        plan.notes.append(f"GPU-hours unknown: {source}")
        return
    plan.gpu_hours = plan.tokens_seen / throughput / 3600
    plan.notes.append(f"{throughput:,.0f} tokens/s per GPU ({source})")


def _preset(config: Any, recipe: Recipe) -> str | None:
    """The model preset a training step trains: its own, or that of the training step its `init` names."""
    init = config.init
    while init is not None:
        if not init.startswith("@"):
            return None  # a model folder or a hub model: its size is not known without reading it
        named = next((step for step in recipe.steps if step.name == init[1:].split("/")[0]), None)
        if named is None or named.kind != "train":
            return None
        config, init = named.config, named.config.init
    return config.model


def _throughput(entry: RecipeStep, preset: str | None, recipe: Recipe) -> tuple[float | None, str]:
    config, expect = entry.config, entry.expect
    if preset is None and expect.tokens_per_s_per_gpu is None:
        return None, "the model comes from a folder or the hub; set expect.tokens_per_s_per_gpu"
    if expect.tokens_per_s_per_gpu is not None:
        return expect.tokens_per_s_per_gpu, "the recipe's expect"
    assert preset is not None
    recorded = recorded_throughput(_results_file(recipe), preset, config.seq_len)
    if recorded is not None:
        return recorded, f"recorded in bench/RESULTS.md for {preset} at sequence {config.seq_len}"
    if expect.gpu is None:
        return None, (f"no figure recorded for {preset} at sequence {config.seq_len}; set "
                      "expect.tokens_per_s_per_gpu, or expect.gpu for a FLOPs estimate")
    flops = _flops_per_token(preset, config)
    peak = _peak_flops(expect.gpu, config.precision)
    if flops is None or peak is None:
        return None, f"no peak FLOP/s known for {expect.gpu!r} or no preset size; set expect.tokens_per_s_per_gpu"
    return peak * expect.mfu / flops, f"{expect.gpu} at an assumed {expect.mfu:.0%} MFU"


def _flops_per_token(name: str, config: Any) -> float | None:
    """`Phi.flops_per_token` of the preset, built on the meta device (no weights allocated)."""
    import torch

    from textbooks.model.config import padded_vocab, preset
    from textbooks.model.phi import Phi

    try:
        model = preset(name, **config.model_overrides)
    except Exception:
        return None
    vocab = model.vocab_size or padded_vocab(config.vocab_size or 50_295)
    with torch.device("meta"):
        return Phi(model.model_copy(update={"vocab_size": vocab})).flops_per_token(config.seq_len)


def _peak_flops(gpu: str, precision: str) -> float | None:
    import torch

    from textbooks.train.metrics import peak_flops_for_name

    dtype = torch.float16 if precision == "fp16" else torch.float32 if precision == "fp32" else torch.bfloat16
    return peak_flops_for_name(gpu, dtype)


def _results_file(recipe: Recipe) -> Path | None:
    for folder in (Path.cwd(), recipe.path.resolve().parent.parent):
        if (folder / "bench" / "RESULTS.md").is_file():
            return folder / "bench" / "RESULTS.md"
    return None


GPU_ROW = re.compile(r"^\|\s*(?P<date>\d{4}-\d\d-\d\d)\s*\|[^|]*\|\s*(?P<preset>[\w.-]+)\s*\|\s*(?P<seq>\d+)\s*\|"
                     r"\s*(?P<dtype>\w+)\s*\|\s*(?P<tokens>[\d,.]+)\s*\|")


def recorded_throughput(results: Path | None, preset: str, seq_len: int) -> float | None:
    """The newest tokens/s per GPU that `bench/train_speed.py --record` wrote in the results file's table
    "GPU training throughput" (`| date | machine | preset | seq | dtype | tokens/s per GPU | MFU |`)."""
    if results is None:
        return None
    found: list[tuple[str, float]] = []
    inside = False
    for line in results.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            inside = "gpu training throughput" in line.lower()
        match = GPU_ROW.match(line) if inside else None
        if match and match["preset"] == preset and int(match["seq"]) == seq_len:
            found.append((match["date"], float(match["tokens"].replace(",", ""))))
    return max(found)[1] if found else None


def _eval(entry: RecipeStep, upstream: Flow, plan: StepPlan, flows: dict, recipe: Recipe) -> None:
    from textbooks.benchmarks import PROBLEM_COUNTS

    config = entry.config
    problems = sum(min(PROBLEM_COUNTS.get(name, 0), config.limit or math.inf) for name in config.bench)
    variants = 1 + len(config.perturb)
    samples = int(problems * config.n * variants)
    model = entry.input or ""
    if config.samples is not None:
        plan.notes.append("scores a samples file: nothing generated")
    elif model.startswith("openai:"):
        from textbooks.llm.config import LLMConfig

        llm = LLMConfig(model=model.removeprefix("openai:"), max_tokens=config.max_new_tokens,
                        **({"base_url": config.base_url} if config.base_url else {}))
        plan.llm.append(_llm_plan(llm, samples, 150.0, config.max_new_tokens))
        plan.notes.append("prompt tokens at about 150 a problem (HumanEval's mean is ~130)")
    else:
        plan.notes.append(f"{samples:,} completions of at most {config.max_new_tokens} tokens "
                          f"({problems:,} problems x {config.n} samples x {variants} prompt forms)")


def _llm_plan(llm: Any, requests: int, prompt_tokens_each: float, max_tokens: int | None) -> LLMPlan:
    from textbooks.llm.pricing import cost_usd, price_of

    prompt_tokens = int(round(requests * prompt_tokens_each))
    output = requests * int(max_tokens or 0)
    cost = cost_usd(price_of(llm.model, llm.prices), prompt_tokens, output)
    return LLMPlan(llm.model, requests, prompt_tokens, output, cost)


def _tokens(text: str) -> int:
    from textbooks.llm.pricing import characters_over_4

    return characters_over_4(text)


Estimator = Callable[[RecipeStep, Flow, StepPlan, dict, Recipe], None]
ESTIMATORS: dict[str, Estimator] = {
    "ingest": _ingest, "filter": _filter, "annotate": _annotate, "synth": _synth, "tokenize": _tokenize,
    "train": _train, "eval": _eval,
}


def _count(value: float | None, at_most: bool = False) -> str:
    if value is None:
        return "?"
    text = f"{value / 1e9:,.2f}B" if value >= 1e9 else f"{value / 1e6:,.1f}M" if value >= 1e6 else f"{value:,.0f}"
    return ("<= " if at_most else "") + text


def _hours(hours: float, kind: str) -> str:
    """`12.5 GPU-hours`, or `7.2 GPU-minutes` under an hour."""
    return f"{hours:,.1f} {kind}hours" if hours >= 1 else f"{60 * hours:,.1f} {kind}minutes"


def format_plan(plans: list[StepPlan], recipe: Recipe) -> str:
    lines = [f"{recipe.path}: {len(plans)} steps, checked; dry run: nothing read, written or sent", ""]
    requests = cost = gpu_hours = 0.0
    cost_known = True
    for number, plan in enumerate(plans, 1):
        made = f"{plan.makes}"
        if plan.makes in ("dataset", "tokens"):
            made += f": {_count(plan.flow.rows, plan.flow.at_most)} rows" if plan.makes == "dataset" else ""
            made += f", {_count(plan.flow.tokens, plan.flow.at_most)} tokens"
        lines.append(f"{number:>2}. {plan.name} ({plan.kind}) reads {plan.reads}; makes {made}")
        for llm in plan.llm:
            price = "no price (set llm.prices)" if llm.cost_usd is None else f"<= ${llm.cost_usd:,.2f}"
            lines.append(f"      LLM {llm.model}: {llm.requests:,} requests, ~{_count(llm.prompt_tokens)} prompt "
                         f"tokens, <= {_count(llm.max_output_tokens)} output tokens, {price}")
            requests += llm.requests
            cost_known &= llm.cost_usd is not None
            cost += llm.cost_usd or 0.0
        if plan.tokens_seen is not None:
            hours = "GPU-hours ?" if plan.gpu_hours is None else _hours(plan.gpu_hours, "GPU-")
            if plan.gpu_hours is not None and plan.gpus:
                hours += f" ({_hours(plan.gpu_hours / plan.gpus, '')} on {plan.gpus} GPUs)"
            lines.append(f"      trains on {_count(plan.tokens_seen)} tokens; {hours}")
            gpu_hours += plan.gpu_hours or 0.0
        lines += [f"      {note}" for note in plan.notes]
    spend = f"${cost:,.2f}" if cost_known else f"${cost:,.2f} + models without a price"
    lines += ["", f"total: {requests:,.0f} LLM requests, at most {spend}; {_hours(gpu_hours, 'GPU-')} of training"]
    return "\n".join(lines)
