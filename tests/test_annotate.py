"""`textbooks annotate`: the seeded sample, the offline rubric, an LLM judge on a real loopback server (varied
answer formats, garbage asked again), two judges' agreement, and bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import dataset_rows
from llm_server import count_words, kill_after, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.cli import main
from textbooks.llm.cache import ResponseCache
from textbooks.quality.agreement import cohen_kappa, spearman
from textbooks.quality.parse import parse_score
from textbooks.quality.rubric import score
from textbooks.store import data

EDUCATIONAL = [
    '''def factorial(n):
    """Return n! for a non-negative integer n, computed with a loop."""
    result = 1
    for k in range(2, n + 1):
        result *= k
    return result
''',
    '''def is_palindrome(word):
    """True when `word` reads the same backwards, ignoring case."""
    word = word.lower()
    left, right = 0, len(word) - 1
    while left < right:
        if word[left] != word[right]:
            return False
        left, right = left + 1, right - 1
    return True
''',
    '''def count_vowels(text):
    """How many vowels `text` has."""
    vowels = set("aeiou")
    total = 0
    for char in text.lower():
        if char in vowels:
            total += 1
    return total
''',
    '''def gcd(a, b):
    """The greatest common divisor of two positive integers, by Euclid's method."""
    while b:
        a, b = b, a % b
    return a
''',
]
BOILERPLATE = [
    "from .models import Base\nDEBUG = True\nALLOWED_HOSTS = ['*']\nPORT = 8000\n",
    "from .views import handler\nfrom .urls import patterns\n\n\ndef setup(app):\n    pass\n",
    "class Plugin(BasePlugin):\n    def run(self):\n        raise NotImplementedError\n",
    "# auto-generated, do not edit\nVERSION = '1.0'\nBUILD = 1234\nNAME = 'x'\n",
]


def write_corpus(folder: Path, count: int = 40) -> Path:
    """A JSONL corpus: the snippets above, repeated with their index so each row is its own."""
    folder.mkdir(parents=True, exist_ok=True)
    snippets = EDUCATIONAL + BOILERPLATE
    rows = [{"id": f"row-{index}", "text": snippets[index % len(snippets)] + f"# {index}\n"} for index in range(count)]
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"score": 4, "reason": "clear loops"}', (4.0, "clear loops")),
    ('```json\n{"score": "3", "justification": "fine"}\n```', (3.0, "fine")),
    ("Score: 2", 2.0), ("**Score:** 5\nIt is a textbook example.", 5.0), ("I would rate it 4/5.", 4.0),
    ("Educational value: 1 out of 5", 1.0), ("This deserves a 3, since it is short but clear.", 3.0),
])
def test_scores_parse_from_varied_answer_formats(answer, expected) -> None:
    parsed = parse_score(answer)
    assert parsed is not None
    assert (parsed if isinstance(expected, tuple) else parsed[0]) == expected


@pytest.mark.parametrize("answer", ["", "I cannot judge this.", "Score: 9", "between 2 and 4", '{"score": true}'])
def test_garbage_is_no_score(answer) -> None:
    assert parse_score(answer) is None


def test_the_rubric_puts_every_educational_snippet_above_every_boilerplate_one() -> None:
    assert min(score(text).score for text in EDUCATIONAL) > max(score(text).score for text in BOILERPLATE)
    assert score("this is ( not python").score == 0.0
    assert "meets: documented" in score(EDUCATIONAL[0]).reason


def test_agreement_measures_follow_their_definitions() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # observed 0.75, chance 0.5: kappa 0.5
    assert cohen_kappa([True, True, False, False], [True, False, False, False]) == pytest.approx(0.5)


def test_the_sample_is_seeded_nested_and_annotated_by_the_rubric(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "in")
    for size, seed in ((10, 0), (20, 0), (10, 1)):
        assert main(["annotate", "--input", str(corpus), "--sample-size", str(size), "--seed", str(seed),
                     "--out", str(tmp_path / f"s{size}-{seed}")]) == 0
    small, large, other = (dataset_rows(tmp_path / name) for name in ("s10-0", "s20-0", "s10-1"))
    assert len(small) == 10 and len(large) == 20
    assert {row["id"] for row in small} < {row["id"] for row in large}  # a larger sample holds a smaller one
    assert {row["id"] for row in small} != {row["id"] for row in other}
    for row in large:
        assert row["edu_label"] == score(row["text"]).score and row["annotator"] == "rubric-v1"
    stats = data.read_stats(tmp_path / "s20-0")
    assert stats["counters"]["rows_read"] == 40 and sum(stats["labels"].values()) == 20


def judge_reply(request: dict) -> str:
    """A judge with manners of its own: JSON for loops, prose for the rest, garbage for boilerplate until it is
    asked again, and never anything readable for generated files."""
    conversation = request["messages"]
    code = conversation[1]["content"]
    if "auto-generated" in code:
        return "I'd rather not say."
    if "DEBUG = True" in code or "pass\n" in code or "NotImplementedError" in code:
        return '{"score": 0, "reason": "boilerplate"}' if len(conversation) > 2 else "Hmm, hard to tell!"
    if "while" in code:
        return '{"score": 5, "reason": "a loop a learner can follow"}'
    return "Score: 4. Clear and short."


def test_an_llm_judge_on_a_real_server_reasks_garbage_and_agrees_with_the_rubric(tmp_path, llm_server) -> None:
    llm_server.reply = judge_reply
    corpus = write_corpus(tmp_path / "in", count=16)
    out = tmp_path / "llm"
    assert main(["annotate", "--input", str(corpus), "--sample-size", "16", "--annotator", "llm",
                 "--llm.model", "judge", "--llm.base-url", llm_server.url, "--reasks", "1",
                 "--llm.prices", '{"judge": {"input": 1.0, "output": 2.0}}',
                 "--compare.annotator", "rubric", "--out", str(out)]) == 0
    rows = {row["id"]: row for row in dataset_rows(out)}
    generated = [row for row in rows.values() if "auto-generated" in row["text"]]
    assert generated and all(row["edu_label"] is None and "no score in 2 answers" in row["edu_reason"]
                             for row in generated)
    boiler = [row for row in rows.values() if "DEBUG = True" in row["text"]]
    assert boiler and all(row["edu_label"] == 0.0 for row in boiler)  # scored when asked again
    loops = [row for row in rows.values() if "while" in row["text"]]
    assert all(row["edu_label"] == 5.0 and row["edu_reason"] == "a loop a learner can follow" for row in loops)
    stats = data.read_stats(out)
    counters = stats["counters"]
    reasked = sum("DEBUG = True" in row["text"] or "pass\n" in row["text"] or "NotImplementedError" in row["text"]
                  or "auto-generated" in row["text"] for row in rows.values())
    assert counters["requests"] == 16 + reasked == len(llm_server.requests)
    assert counters["unparseable"] == len(generated) and counters["failed_requests"] == 0
    # tokens as the server counted them (words), priced by the recipe's table
    prompt_tokens = sum(count_words(request.body) for request in llm_server.requests)
    output_tokens = sum(len(judge_reply(request.body).split()) for request in llm_server.requests)
    assert (counters["prompt_tokens"], counters["completion_tokens"]) == (prompt_tokens, output_tokens)
    assert counters["cost_usd"] == pytest.approx((prompt_tokens * 1.0 + output_tokens * 2.0) / 1e6)
    from textbooks.report.step import write_report

    write_report(out.parent, out.name, say=lambda line: None)
    requests = (out.parent / "report.md").read_text().split("#### Requests")[1].split("####")[0]
    assert f"| {16 + reasked} | 0 | {reasked} | {len(generated)} | 0 | {prompt_tokens:,} | {output_tokens:,} | " \
           f"{counters['cost_usd']:.4f} |" in requests
    agreement = stats["agreement"]
    assert agreement["rows"] == 16 - len(generated) and agreement["spearman"] > 0.5
    assert all(row["annotator"] == "llm:judge/edu-v1" and row["annotator_compare"] == "rubric-v1"
               for row in rows.values())


def test_llm_judges_ask_by_schema_and_ask_plainly_a_server_that_refuses_it(tmp_path, llm_server) -> None:
    llm_server.reply = lambda body: '{"score": 3, "reason": "fine"}'
    corpus = write_corpus(tmp_path / "in", count=8)
    args = ["annotate", "--input", str(corpus), "--sample-size", "8", "--annotator", "llm", "--llm.model", "judge",
            "--llm.base-url", llm_server.url, "--llm.concurrency", "1", "--no-llm.cache"]
    assert main([*args, "--out", str(tmp_path / "schema")]) == 0
    schema = llm_server.requests[0].body["response_format"]["json_schema"]["schema"]
    assert all(request.body["response_format"]["json_schema"]["schema"] == schema for request in llm_server.requests)
    assert schema["required"] == ["score", "reason"] and schema["properties"]["score"]["maximum"] == 5

    llm_server.requests.clear()
    llm_server.refused_fields = {"response_format"}
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert all(row["edu_label"] == 3.0 for row in dataset_rows(tmp_path / "plain"))
    refused = [request for request in llm_server.requests if "response_format" in request.body]
    assert len(refused) == 1 and len(llm_server.requests) == 9  # one refusal, then every row asked plainly
    counters = data.read_stats(tmp_path / "plain")["counters"]
    assert counters["schema_refused"] == 1 and counters["failed_requests"] == 0 and counters["requests"] == 8

    assert main([*args, "--no-structured-output", "--out", str(tmp_path / "off")]) == 0
    assert not any("response_format" in request.body for request in llm_server.requests[9:])

    # with the cache (the default), a rerun sends nothing: the refusal is in the cache too, and read as one
    cached = [arg for arg in args if arg != "--no-llm.cache"]
    for out in ("first", "again"):
        assert main([*cached, "--out", str(tmp_path / out)]) == 0
        assert all(row["edu_label"] == 3.0 for row in dataset_rows(tmp_path / out))
    assert len(llm_server.requests) == 9 + 8 + 9
    assert data.read_stats(tmp_path / "again")["counters"]["cached"] == 8


def test_annotate_killed_mid_run_resumes_from_its_default_cache(tmp_path, llm_server, monkeypatch) -> None:
    llm_server.latency_s = 0.03
    llm_server.reply = lambda body: '{"score": 2, "reason": "ok"}'
    monkeypatch.setenv("TEXTBOOKS_CACHE", str(tmp_path / "cache"))  # what a user's own run would use
    corpus = write_corpus(tmp_path / "in", count=60)
    args = ["annotate", "--input", str(corpus), "--sample-size", "60", "--annotator", "llm", "--llm.model", "judge",
            "--llm.base-url", llm_server.url, "--llm.concurrency", "4", "--out", str(tmp_path / "out")]
    first_run = kill_after(llm_server, args, 25)
    answered = ResponseCache.open(tmp_path / "cache" / "llm" / "responses.sqlite").count("ok")
    assert 15 <= answered <= first_run < 60 and not data.is_complete(tmp_path / "out")

    assert main(args) == 0
    asked = Counter(request.body["messages"][1]["content"] for request in llm_server.requests)
    assert len(asked) == 60 and max(asked.values()) <= 2
    assert sum(times == 2 for times in asked.values()) == first_run - answered  # only those in flight at the kill
    counters = data.read_stats(tmp_path / "out")["counters"]
    assert (counters["cached"], counters["requests"]) == (answered, 60)
    assert all(row["edu_label"] == 2.0 for row in dataset_rows(tmp_path / "out"))


def refused(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_an_llm_judge_without_a_model_or_a_key_is_refused_and_nothing_is_done(tmp_path, capsys,
                                                                              monkeypatch) -> None:
    corpus = str(write_corpus(tmp_path / "in"))
    out = tmp_path / "out"
    line = refused(capsys, "annotate", "--input", corpus, "--annotator", "llm", "--out", str(out))
    assert "the llm annotator needs a model" in line and "--llm.model" in line
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    line = refused(capsys, "annotate", "--input", corpus, "--annotator", "llm", "--llm.model", "gpt-4o",
                   "--llm.base-url", "https://api.example.com/v1", "--out", str(out))
    assert "no API key for https://api.example.com/v1" in line and "OPENAI_API_KEY" in line
    assert not (out / data.MARKER).exists()


def test_the_report_shows_the_score_distribution_and_the_best_and_worst_snippets(tmp_path) -> None:
    from textbooks.report.step import write_report

    corpus = write_corpus(tmp_path / "in")
    run = tmp_path / "run"
    assert main(["annotate", "--input", str(corpus), "--sample-size", "24", "--out", str(run / "annotate")]) == 0
    write_report(run, "annotate", say=lambda line: None)
    markdown = (run / "report.md").read_text()
    section = markdown.split("### Educational value")[1]
    assert "24 rows sampled from 40 and scored by rubric-v1" in section
    best, worst = section.split("#### Best scored: 2 of 24")[1].split("#### Worst scored: 2 of 24")
    assert "binary_search" in best or "is_palindrome" in best or "factorial" in best or "count_vowels" in best
    assert "DEBUG = True" in worst or "auto-generated" in worst or "NotImplementedError" in worst or "pass" in worst
    assert (run / "report_files").is_dir() and any("annotate-scores" in path.name
                                                    for path in (run / "report_files").iterdir())


def test_a_dry_run_estimates_requests_tokens_and_cost_and_sends_nothing(tmp_path, llm_server, capsys) -> None:
    llm_server.reply = judge_reply
    corpus = str(write_corpus(tmp_path / "in", count=16))
    out = tmp_path / "llm"
    args = ["annotate", "--input", corpus, "--sample-size", "10", "--annotator", "llm", "--llm.model", "judge",
            "--llm.base-url", llm_server.url, "--llm.max-tokens", "100",
            "--llm.prices", '{"judge": {"input": 2.0, "output": 8.0}}', "--out", str(out)]
    assert main([*args, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "annotate --dry-run: 10 sampled rows; nothing sent" in said
    assert "judge: 10 requests (0 more answered in the cache)" in said and "at most 1,000 output tokens" in said
    prompt_tokens = int(said.split("about ")[1].split(" prompt tokens")[0].replace(",", ""))
    assert prompt_tokens > 10 * 50  # the instructions alone are a few hundred characters per request
    assert f"at most ${(prompt_tokens * 2.0 + 1000 * 8.0) / 1e6:,.2f}" in said
    assert llm_server.requests == [] and not (out / data.MARKER).exists()
    assert main(args) == 0 and data.is_complete(out)  # the real run afterwards: same fingerprint, a fresh start
    assert len(llm_server.requests) >= 10


def test_retry_failed_asks_again_only_the_requests_that_failed(tmp_path, llm_server, capsys) -> None:
    llm_server.reply = lambda request: '{"score": 3, "reason": "fine"}'
    llm_server.inject(status=500, times=3)  # the first three requests fail, and are not retried (max-retries 0)
    corpus = str(write_corpus(tmp_path / "in", count=8))
    out = tmp_path / "llm"
    args = ["annotate", "--input", corpus, "--sample-size", "8", "--annotator", "llm", "--llm.model", "judge",
            "--llm.base-url", llm_server.url, "--llm.max-retries", "0", "--llm.cache",
            "--llm.cache-path", str(tmp_path / "responses.sqlite"), "--out", str(out)]
    assert main(args) == 0
    first = dataset_rows(out)
    failed = [row for row in first if row["edu_label"] is None]
    assert len(failed) == 3 and all(row["edu_reason"].startswith("request failed") for row in failed)
    assert data.read_stats(out)["counters"]["failed_requests"] == 3 and len(llm_server.requests) == 8
    assert main(args) == 0 and len(llm_server.requests) == 8  # the same settings: done earlier
    assert main([*args, "--retry-failed"]) == 0
    assert len(llm_server.requests) == 8 + 3  # the five answered come from the cache
    assert all(row["edu_label"] == 3.0 for row in dataset_rows(out))
