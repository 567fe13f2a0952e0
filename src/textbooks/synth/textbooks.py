"""Textbook sections: asked, their code run in the sandbox, kept when every block does what the text says.

A section with no Python block is dropped (`no_code`): a textbook of the paper's kind teaches with examples.
Drop reasons: request_failed, no_code, syntax_error, forbidden_import, failed_run, wrong_output, timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textbooks.llm import Completion
from textbooks.pipeline.stage import ShardResult
from textbooks.synth import records
from textbooks.synth.asking import ask, in_thread, usage_columns
from textbooks.synth.sampler import Params
from textbooks.synth.textbook_code import Block, check_program, code_blocks, static_problem

if TYPE_CHECKING:
    from textbooks.sandbox import Outcome
    from textbooks.synth.asking import SynthState
    from textbooks.synth.config import SynthConfig


def _failure(outcome: Outcome) -> tuple[str, str]:
    """(reason, detail) of a section whose program did not pass."""
    text = f"{outcome.reason} {outcome.stderr[-600:]}"
    if outcome.status == "timeout":
        return "timeout", outcome.reason
    if "wrong_output:" in text:
        return "wrong_output", text[text.index("wrong_output:") + len("wrong_output:"):].strip()[:300]
    return "failed_run", text.strip()[-300:]


async def write_textbooks(config: SynthConfig, state: SynthState, params: list[Params],
                          snippets: list[str | None]) -> ShardResult:
    assert config.llm is not None
    kept: list[dict] = []
    dropped: list[tuple[dict, str]] = []
    pending = list(range(len(params)))
    counters = {"requests": 0.0, "rows_asked": float(len(params))}
    for attempt in range(config.attempts):
        if not pending:
            break
        replies = await ask(config, state, [params[i] for i in pending], [snippets[i] for i in pending], attempt)
        counters["requests"] += len(pending)
        rows, programs = [], []
        for index, reply in zip(pending, replies):
            row = records.attempt_row("textbooks", config.seed, params[index], usage_columns(reply, config.llm),
                                      config.llm.model, attempt + 1)
            text = reply.text if isinstance(reply, Completion) else ""
            blocks: list[Block] = code_blocks(text)
            row.update(text=text, code_blocks=len(blocks), code_ok=False)
            problem = ("request_failed", str(reply)[:300]) if not isinstance(reply, Completion) else \
                ("no_code", "no ```python block") if not blocks else static_problem(blocks, state.allowed)
            rows.append((index, row, problem))
            if problem is None:
                programs.append(check_program(blocks))
        outcomes = iter(await in_thread(state.sandbox.run_many, programs) if programs else [])
        still = []
        last = attempt == config.attempts - 1
        for index, row, problem in rows:
            if problem is None:
                outcome = next(outcomes)
                problem = None if outcome.status == "passed" else _failure(outcome)
            if problem is None:
                kept.append({**row, "code_ok": True})
            elif last and config.on_failure == "flag" and problem[0] != "request_failed":
                kept.append({**row, "error": f"{problem[0]}: {problem[1]}"})
            else:
                dropped.append(({**row, "error": problem[1]}, problem[0]))
                still.append(index)
        pending = still
    kept_table, dropped_table = records.tables("textbooks", kept, dropped)
    return ShardResult(kept=kept_table, dropped=dropped_table, counters=counters)
