"""The seeded sampler of what a synthetic textbook section or exercise is about, and how evenly a dataset covers it.

The paper made its generated data diverse by constraining the topic, the target audience and (for exercises) the
function name in every prompt, and by forcing in random words as TinyStories did (section 2.2); it does not
publish its lists. Here the topics are a tree (`taxonomy.yaml`, 444 leaves) and every choice of a row is a pure
function of (seed, row index):

    sampler = Sampler(Taxonomy.load(), seed=0)
    sampler.params(7).as_row()
    # {"topic": "Python basics > Strings > string literals and escape sequences", "audience": "career-changer",
    #  ..., "words": ["envelope", "courier"], "function_name": "extract_measurements_in_range", "sample_index": 7}

so a killed run resumed, or rows made in any order or on any worker, get the same parameters. The draws come from
blake2b of (seed, index), not from `random.Random`, whose choice, shuffle and sample Python does not promise to
keep across versions. Topics are dealt in rounds: indices [k*n, (k+1)*n) cover each of the n leaves once, in an
order shuffled per round, so even a few hundred rows spread over the whole tree (n uniform draws would miss about
a third of n leaves). Function names are a seeded permutation of verb x object x qualifier (`words.py`): no name
repeats within the first `NameSampler.size()` indices. `coverage(rows)` says how evenly a dataset's rows spread
over these choices.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from textbooks.errors import UserError
from textbooks.synth.words import OBJECTS, QUALIFIERS, VERBS, WORDS

BUILT_IN = "the built-in taxonomy"

AUDIENCES: dict[str, str] = {
    "beginner": "someone writing their first programs, who needs each step spelled out",
    "high-school": "a high-school student who knows school algebra and is curious how programs work",
    "undergraduate": "a first-year computer science student who wants the reasoning and the cost of each approach",
    "self-taught": "a self-taught programmer who learns by building small projects",
    "data-analyst": "a data analyst who works with tables of numbers and wants to automate routine work",
    "career-changer": "an adult moving into programming from another job, who likes ideas tied to everyday work",
    "interview-prep": "a programmer preparing for coding interviews, who wants patterns, edge cases and complexity",
    "teacher": "a teacher preparing a lesson, who needs clear explanations and examples to show a class",
}
LEVELS: tuple[str, ...] = ("introductory", "intermediate", "advanced")
STYLES: tuple[str, ...] = (
    "a worked example first, then the idea behind it",
    "a short story that motivates the concept",
    "questions and answers",
    "a step-by-step derivation",
    "a common mistake, why it happens, and how to fix it",
    "two approaches compared side by side",
    "a small program built up piece by piece",
    "a definition, then examples from simple to subtle",
)
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")

_STR_TAG = "tag:yaml.org,2002:str"
_Item = TypeVar("_Item")


def _stable_int(key: str) -> int:
    """64 bits of blake2b of `key`: the same on every machine, process and Python version (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class _Draws:
    """Uniform draws numbered 1, 2, ... under one key (the bias of 64 bits modulo a small n is below 1e-17)."""

    def __init__(self, key: str) -> None:
        self.key, self.count = key, 0

    def below(self, bound: int) -> int:
        self.count += 1
        return _stable_int(f"{self.key}:{self.count}") % bound

    def choice(self, options: Sequence[_Item]) -> _Item:
        return options[self.below(len(options))]

    def sample(self, options: Sequence[_Item], count: int) -> tuple[_Item, ...]:
        pool = list(options)
        return tuple(pool.pop(self.below(len(pool))) for _ in range(count))

    def shuffled(self, items: Sequence[_Item]) -> list[_Item]:
        order = list(items)
        for last in range(len(order) - 1, 0, -1):  # Fisher-Yates
            other = self.below(last + 1)
            order[last], order[other] = order[other], order[last]
        return order


@dataclass(frozen=True)
class Topic:
    path: tuple[str, ...]  # ("Data structures", "Lists", "list comprehensions")

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def label(self) -> str:
        return " > ".join(self.path)


@dataclass
class Taxonomy:
    leaves: list[Topic]  # in file order
    source: str  # the file it came from, or BUILT_IN

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """A topic tree from YAML: nested mappings of topic names whose leaves are lists of topic names; None is
        the shipped `taxonomy.yaml`."""
        if path is None:
            resource = importlib.resources.files("textbooks.synth").joinpath("taxonomy.yaml")
            if not resource.is_file():
                raise UserError(f"{BUILT_IN} ({resource}) is missing from the installed package; reinstall textbooks "
                                "(pip install -e .) from a checkout that has it, or pass a taxonomy file")
            source, text = BUILT_IN, resource.read_text(encoding="utf-8")
        else:
            source, text = str(path), _read(Path(path))
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise UserError(f"{source}: not valid YAML{where} ({problem}); fix the syntax and run again") from None
        if root is None:
            raise UserError(f"{source}: no topics; write a mapping of topic names whose leaves are lists of topics, "
                            "like the built-in taxonomy.yaml")
        if not isinstance(root, yaml.MappingNode):
            raise UserError(f"{source}:{root.start_mark.line + 1}: the top level is {_kind(root)}; it must be a "
                            "mapping of topic names whose leaves are lists of topics, like the built-in taxonomy.yaml")
        return cls(_leaves(source, root, ()), source)


def _read(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such taxonomy file; give the path of a YAML topic tree, or none for the "
                        "built-in one")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r} (read as {node.tag.rsplit(':', 1)[-1]})"


def _name(node: yaml.Node, where: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
        raise UserError(f"{where}: {_kind(node)} is not a topic name; write topic names as text (quote one that "
                        "YAML reads as a number, a date or null)")
    if not node.value.strip():
        raise UserError(f"{where}: an empty topic name; write a name or remove it")
    return node.value.strip()


def _leaves(source: str, node: yaml.Node, path: tuple[str, ...], above: tuple[yaml.Node, ...] = ()) -> list[Topic]:
    """The leaves under `node` in file order; every problem names the file, the line and the key path."""
    place = f"under '{' > '.join(path)}'" if path else "at the top level"

    def where(at: yaml.Node) -> str:
        return f"{source}:{at.start_mark.line + 1}: {place}"

    if any(node is ancestor for ancestor in above):
        raise UserError(f"{where(node)}: an alias of a topic that contains it; a topic cannot be its own subtopic")
    topics: list[Topic] = []
    seen: set[str] = set()
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = _name(key, where(key))
            if name in seen:
                raise UserError(f"{where(key)}: the topic '{name}' appears twice; merge the two into one")
            seen.add(name)
            topics += _leaves(source, value, (*path, name), (*above, node))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            name = _name(item, where(item))
            if name in seen:
                raise UserError(f"{where(item)}: the topic '{name}' appears twice; remove one")
            seen.add(name)
            topics.append(Topic((*path, name)))
    else:
        raise UserError(f"{where(node)}: {_kind(node)}; expected a mapping of subtopics or a list of topics")
    if not topics:
        raise UserError(f"{where(node)}: no topics; add some or remove the key")
    return topics


class NameSampler:
    """Function names (snake_case, valid identifiers, not keywords or builtins) from seeded verb x object x
    qualifier combinations: at least 100,000 distinct names."""

    _ROUNDS = 4

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._size = len(VERBS) * len(OBJECTS) * len(QUALIFIERS)
        self._half_bits = ((self._size - 1).bit_length() + 1) // 2

    def size(self) -> int:
        return self._size

    def name(self, index: int) -> str:
        """The name at `index`, a pure function of (seed, index); indices below size() give distinct names."""
        if index < 0:
            raise ValueError(f"a name index is 0 or more, got {index}")
        code, qualifier = divmod(self._permuted(index % self._size), len(QUALIFIERS))
        verb, thing = divmod(code, len(OBJECTS))
        return "_".join(part for part in (VERBS[verb], OBJECTS[thing], QUALIFIERS[qualifier]) if part)

    def _permuted(self, value: int) -> int:
        """A seeded bijection of range(size): a Feistel network on 2 * half_bits bits, applied again while the
        result lies outside the range (cycle walking, fewer than 1.5 passes on average here)."""
        mask = (1 << self._half_bits) - 1
        while True:
            left, right = value >> self._half_bits, value & mask
            for round_index in range(self._ROUNDS):
                left, right = right, left ^ (_stable_int(f"{self.seed}:name:{round_index}:{right}") & mask)
            value = (left << self._half_bits) | right
            if value < self._size:
                return value


@dataclass(frozen=True)
class Params:
    index: int
    topic: str  # Topic.label
    audience: str
    level: str
    style: str
    difficulty: str
    words: tuple[str, ...]
    function_name: str

    def as_row(self) -> dict[str, Any]:
        """The columns this row adds to a dataset."""
        return {"topic": self.topic, "audience": self.audience, "level": self.level, "style": self.style,
                "difficulty": self.difficulty, "words": list(self.words), "function_name": self.function_name,
                "sample_index": self.index}


def _chosen(kind: str, chosen: Sequence[str] | None, known: Sequence[str]) -> tuple[str, ...]:
    if chosen is None:
        return tuple(known)
    if isinstance(chosen, str):  # one choice, not a sequence of letters
        chosen = [chosen]
    unknown = [value for value in chosen if value not in known]
    if unknown or not chosen:
        said = f"unknown {kind} {', '.join(map(repr, unknown))}" if unknown else f"no {kind} chosen"
        raise UserError(f"{said}; choose from: {', '.join(map(repr, known))}")
    return tuple(dict.fromkeys(chosen))


class Sampler:
    """What row `index` is about: a pure function of (taxonomy, choices, seed, index)."""

    def __init__(self, taxonomy: Taxonomy, seed: int = 0, audiences: Sequence[str] | None = None,
                 levels: Sequence[str] | None = None, styles: Sequence[str] | None = None,
                 words_per_sample: int = 2) -> None:
        if not taxonomy.leaves:
            raise UserError(f"{taxonomy.source}: no topics to sample from")
        if not 0 <= words_per_sample <= len(WORDS):
            raise UserError(f"words_per_sample is {words_per_sample}; choose from 0 to {len(WORDS)}")
        self.taxonomy = taxonomy
        self.seed = seed
        self.audiences = _chosen("audience", audiences, tuple(AUDIENCES))
        self.levels = _chosen("level", levels, LEVELS)
        self.styles = _chosen("style", styles, STYLES)
        self.words_per_sample = words_per_sample
        self.names = NameSampler(seed)
        self._round: tuple[int, list[Topic]] = (-1, [])  # the last round of topics dealt

    def params(self, index: int) -> Params:
        if index < 0:
            raise ValueError(f"a sample index is 0 or more, got {index}")
        draws = _Draws(f"{self.seed}:{index}")
        return Params(index=index, topic=self._topic(index).label, audience=draws.choice(self.audiences),
                      level=draws.choice(self.levels), style=draws.choice(self.styles),
                      difficulty=draws.choice(DIFFICULTIES), words=draws.sample(WORDS, self.words_per_sample),
                      function_name=self.names.name(index))

    def many(self, count: int, start: int = 0) -> list[Params]:
        return [self.params(index) for index in range(start, start + count)]

    def _topic(self, index: int) -> Topic:
        """Leaves are dealt in rounds of len(leaves) indices, each round in its own seeded order."""
        round_index, position = divmod(index, len(self.taxonomy.leaves))
        dealt, order = self._round
        if dealt != round_index:
            order = _Draws(f"{self.seed}:topics:{round_index}").shuffled(self.taxonomy.leaves)
            self._round = (round_index, order)
        return order[position]


_SPREAD_COLUMNS = {"topics": "topic", "audiences": "audience", "levels": "level", "styles": "style",
                   "difficulties": "difficulty"}


def _spread(counts: Counter, options: int) -> dict[str, Any]:
    rows = sum(counts.values())
    entropy = sum(count / rows * math.log2(rows / count) for count in counts.values())
    top = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:10]
    return {"distinct": len(counts), "rows": rows, "entropy_bits": entropy,
            "normalized_entropy": entropy / math.log2(options) if options > 1 else 1.0,
            "top": [[value, count] for value, count in top]}


def coverage(rows: Iterable[Mapping[str, Any]], taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """How evenly a dataset's rows cover the sampler's choices, from the row columns above: for "topics",
    "audiences", "levels", "styles", "difficulties": {"distinct": n, "rows": n, "entropy_bits": H,
    "normalized_entropy": H / log2(distinct or of) , "top": [[value, count], ... 10]} and for topics also
    "of": the taxonomy's leaf count and "share": distinct / of; for "names" (function_name): {"distinct", "rows",
    "repeated": rows - distinct}. Columns missing from the rows are left out.

    With a taxonomy, entropy is normalized by log2(of) (evenness over every leaf, not just the ones drawn),
    "share" counts only the taxonomy's own topics, and "outside" counts distinct topics it does not have (rows
    made from another taxonomy). A column with one possible value has normalized entropy 1.0."""
    counts = {name: Counter() for name in (*_SPREAD_COLUMNS, "names")}
    columns = {**_SPREAD_COLUMNS, "names": "function_name"}
    for row in rows:
        for name, column in columns.items():
            value = row.get(column)
            if value is not None:
                counts[name][value] += 1
    report: dict[str, Any] = {}
    for name in _SPREAD_COLUMNS:
        if counts[name]:
            of = len(taxonomy.leaves) if taxonomy is not None and name == "topics" else len(counts[name])
            report[name] = _spread(counts[name], of)
    if taxonomy is not None and "topics" in report:
        labels = {topic.label for topic in taxonomy.leaves}
        inside = len(labels & counts["topics"].keys())
        report["topics"].update(of=len(taxonomy.leaves), share=inside / len(taxonomy.leaves),
                                 outside=len(counts["topics"]) - inside)
    if counts["names"]:
        rows_named, distinct = sum(counts["names"].values()), len(counts["names"])
        report["names"] = {"distinct": distinct, "rows": rows_named, "repeated": rows_named - distinct}
    return report
