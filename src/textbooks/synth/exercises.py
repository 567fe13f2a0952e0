"""Exercises in HumanEval form: asked, read (`answers.py`), verified (`verify.py`), asked again when they fail.

Each problem (a sampler index) is asked up to `attempts` times, each attempt a new sample (solution and tests
written anew), until `solutions` attempts have passed; `pass_rate` = passed / attempts made is kept on every
solution as a difficulty label (as KodCode does). Drop reasons: request_failed, unparseable, and the verifier's
(syntax_error, forbidden_import, no_tests, trivial_tests, failed_tests, failed_doctests, timeout,
does_not_define).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textbooks.llm import Completion
from textbooks.pipeline.stage import ShardResult
from textbooks.synth import records
from textbooks.synth.answers import parse_exercise
from textbooks.synth.asking import ask, in_thread, usage_columns
from textbooks.synth.sampler import Params
from textbooks.synth.verify import Exercise

if TYPE_CHECKING:
    from textbooks.synth.asking import SynthState
    from textbooks.synth.config import SynthConfig


async def write_exercises(config: SynthConfig, state: SynthState, params: list[Params],
                          snippets: list[str | None]) -> ShardResult:
    assert config.llm is not None
    passed: dict[int, list[dict]] = {index: [] for index in range(len(params))}
    made = dict.fromkeys(range(len(params)), 0)
    dropped: list[tuple[dict, str]] = []
    counters = {"requests": 0.0, "rows_asked": float(len(params))}
    for attempt in range(config.attempts):
        pending = [index for index in range(len(params)) if len(passed[index]) < config.solutions]
        if not pending:
            break
        replies = await ask(config, state, [params[i] for i in pending], [snippets[i] for i in pending], attempt)
        counters["requests"] += len(pending)
        rows, exercises = [], []
        for index, reply in zip(pending, replies):
            made[index] += 1
            row = {**records.attempt_row("exercises", config.seed, params[index], usage_columns(reply, config.llm),
                                       config.llm.model, attempt + 1),
                   "text": reply.text if isinstance(reply, Completion) else ""}
            found = parse_exercise(reply.text, params[index].function_name) if isinstance(reply, Completion) \
                else None
            if isinstance(found, Exercise):
                row.update(prompt=found.prompt, solution=found.solution, tests=found.tests,
                           entry_point=found.entry_point, text=found.prompt + found.solution)
                exercises.append(found)
                rows.append((index, row, None))
            else:
                reason = found if isinstance(found, tuple) else ("request_failed", str(reply)[:300])
                rows.append((index, row, reason))
        verdicts = iter(await in_thread(state.verifier.verify_many, exercises) if exercises else [])
        for index, row, problem in rows:
            if problem is None:
                verdict = next(verdicts)
                row["doctests"] = verdict.doctests
                problem = None if verdict.ok else (verdict.reason, verdict.detail[:300])
            if problem is None:
                passed[index].append(row)
            else:
                dropped.append(({**row, "error": problem[1]}, problem[0]))
    kept = [{**row, "pass_rate": len(rows) / made[index], "attempts_made": made[index]}
            for index, rows in passed.items() for row in rows]
    dropped = [({**row, "attempts_made": made[_position(params, row)]}, reason) for row, reason in dropped]
    kept_table, dropped_table = records.tables("exercises", kept, dropped)
    return ShardResult(kept=kept_table, dropped=dropped_table, counters=counters)


def _position(params: list[Params], row: dict) -> int:
    return row["sample_index"] - params[0].index
