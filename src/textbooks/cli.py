"""The `textbooks` command: `run` a recipe, or run one step alone with the same settings as flags.

    textbooks run recipes/demo.yaml --out runs/demo
    textbooks ingest --source stdlib --units function class --out runs/x/ingest
    textbooks dedup --input runs/x/ingest --threshold 0.8 --out runs/x/dedup
    textbooks tokenize --input runs/x/dedup --vocab-size 8192 --out runs/x/tokens
    textbooks train --input runs/x/tokens --model tiny --out runs/x/pretrain [--resume]
    torchrun --nproc_per_node 8 -m textbooks train --input TOKENS --model phi-1 --out runs/phi-1
    textbooks eval runs/x/pretrain --bench humaneval,mbpp --n 1 --temperature 0 --out runs/x/eval
    textbooks eval --samples samples.jsonl --bench humaneval --out runs/theirs
    textbooks export-hf runs/x/pretrain runs/x/hf
    textbooks import-hf microsoft/phi-1 --out models/phi-1
    textbooks report runs/demo

A step's flags are its recipe keys (`num_perm` becomes `--num-perm`, a nested `llm: {base_url: ...}` becomes
`--llm.base-url`), made from its typed settings by pydantic-settings; a list takes several values
(`--units function class`). Bad input ends with exit code 2 and one message, never a traceback. `--help`
imports no step: each step's module is imported only when that step runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Sequence

from textbooks import __version__
from textbooks.errors import EndedEarly, UserError, filesystem_problem
from textbooks.pipeline.table import STEPS

if typing.TYPE_CHECKING:
    from textbooks.pipeline.step import Step, StepConfig


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: `run`, `import-hf`, and every step of the table by name (steps parse their own
    flags in `step_parser`, so listing them imports nothing)."""
    parser = argparse.ArgumentParser(prog="textbooks", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"textbooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="run a recipe's steps in order (finished steps are skipped)")
    run.add_argument("recipe", type=Path, help="recipe YAML file, e.g. recipes/demo.yaml")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)")
    run.add_argument("--engine", choices=["process", "local", "async", "ray"], default=None,
                     help="override the recipe's engine")
    run.add_argument("--until", metavar="STEP", default=None,
                     help="stop after this step (e.g. the data steps on one machine, then training under torchrun)")
    run.add_argument("--dry-run", action="store_true",
                     help="check the recipe and print what each step would read, make, send, cost and take in "
                          "GPU-hours; runs nothing")
    for name, entry in STEPS.items():
        commands.add_parser(name, help=entry.summary, add_help=False)
    imported = commands.add_parser("import-hf", help="read a transformers Phi model into a textbooks model folder")
    imported.add_argument("model", help="a local PhiForCausalLM folder, or a hub name such as microsoft/phi-1")
    imported.add_argument("--out", type=Path, required=True, help="the model folder to write")
    return parser


def _is_dict(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_dict(arg) for arg in typing.get_args(annotation))
    return annotation is dict or typing.get_origin(annotation) is dict


def _several_values(container: Any, *names: str, **options: Any) -> Any:
    """pydantic-settings' `add_argument`, with repeatable list flags made to take several values at once, and
    one-letter settings as `--k` like every other flag (it would make them `-k`)."""
    names = tuple(f"-{name}" if len(name) == 2 and name[0] == "-" and name[1] != "-" else name for name in names)
    if options.get("action") == "append":
        metavar = str(options.get("metavar") or "VALUE")
        item = metavar[5:-1] if metavar.startswith("list[") and metavar.endswith("]") else "VALUE"
        options.update(action="extend", nargs="+", metavar=item)
    return argparse._ActionsContainer.add_argument(container, *names, **options)


class FlagSettings:
    """A step's settings as flags of `parser` (nested models as `--outer.inner`), and back to a validated config.

        flags = FlagSettings("dedup", DedupConfig, parser)
        config = flags.config(parser.parse_args(argv))   # a UserError names the flag that is wrong
    """

    def __init__(self, name: str, config_cls: type[StepConfig], parser: argparse.ArgumentParser) -> None:
        from pydantic_settings import CliSettingsSource

        self.name, self.config_cls = name, config_cls
        self.source = CliSettingsSource(config_cls, root_parser=parser, cli_kebab_case=True, cli_implicit_flags=True,
                                        cli_exit_on_error=False, cli_hide_none_type=True,
                                        add_argument_method=_several_values)

    def config(self, args: argparse.Namespace) -> StepConfig:
        from pydantic import ValidationError

        from textbooks.pipeline.recipe import format_validation_error

        _prepare(self.name, args, self.config_cls)
        try:
            values = self.source(parsed_args=args)()
        except Exception as error:  # pydantic-settings' SettingsError: a value it could not split or decode
            raise UserError(f"textbooks {self.name}: {error}") from None
        try:
            return self.config_cls.model_validate(values)
        except ValidationError as error:
            raise UserError(format_validation_error(error, f"textbooks {self.name}", flags=True)) from None


def _prepare(name: str, args: argparse.Namespace, config_cls: type[StepConfig]) -> None:
    """KEY=VALUE pairs of mapping settings become one JSON mapping (values read as YAML: `layers=2` is a
    number), and list items written as YAML mappings (`--mixture '{input: a, weight: 3}'`) become JSON."""
    import yaml

    for field, info in config_cls.model_fields.items():
        value = getattr(args, field, None)
        if not isinstance(value, list):
            continue
        if _is_dict(info.annotation):
            mapping: dict[str, Any] = {}
            for item in value:
                if item.lstrip().startswith("{"):
                    mapping.update(yaml.safe_load(item))
                elif "=" in item:
                    key, _, text = item.partition("=")
                    mapping[key] = yaml.safe_load(text)
                else:
                    raise UserError(f"textbooks {name}: flag '--{field.replace('_', '-')}': expected KEY=VALUE "
                                    f"pairs (got {item!r})")
            setattr(args, field, [json.dumps(mapping)])
        else:
            setattr(args, field, [json.dumps(yaml.safe_load(item)) if item.lstrip().startswith("{") else item
                                  for item in value])


def step_parser(name: str) -> tuple[argparse.ArgumentParser, type[Step], FlagSettings]:
    """The parser of `textbooks NAME`: its input and output, executor flags, and one flag per setting."""
    from textbooks.pipeline.table import step_class

    cls = step_class(name)
    parser = argparse.ArgumentParser(prog=f"textbooks {name}", description=STEPS[name].summary)
    if cls.cli_input == "--input":
        parser.add_argument("--input", default=None, help=cls.input_help)
    elif cls.cli_input:  # optional here: the step says whether its settings need it (eval --samples does not)
        parser.add_argument("input", metavar=cls.cli_input, nargs="?", default=None, help=cls.input_help)
    if cls.cli_out == "--out":
        parser.add_argument("--out", type=Path, required=True, help="the output folder")
    elif cls.cli_out:
        parser.add_argument("out", type=Path, metavar=cls.cli_out, help="the output folder")
    if cls.uses_executor:
        parser.add_argument("--engine", choices=["process", "local", "async", "ray"], default=None,
                            help="where the tasks run (default: process, a local pool)")
        parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
        parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start one)")
    if cls.precious:
        parser.add_argument("--resume", action="store_true",
                            help="continue the unfinished run in --out; refused when the settings differ")
    return parser, cls, FlagSettings(name, cls.Config, parser)


def _step_command(name: str, argv: list[str]) -> None:
    from pydantic import ValidationError

    from textbooks.pipeline.executors import make_executor
    from textbooks.pipeline.executors.base import ExecutorSettings
    from textbooks.pipeline.recipe import format_validation_error
    from textbooks.pipeline.runner import run_step, step_executor

    parser, cls, flags = step_parser(name)
    args = parser.parse_args(argv)
    config = flags.config(args)
    step_input = getattr(args, "input", None)
    step = cls(config, step_input)
    out = args.out if cls.cli_out else Path(str(step_input)) / (cls.folder or name)
    executor = None
    if cls.uses_executor:
        try:  # the same rules as a recipe's `engine:` and `workers:`
            given = ExecutorSettings(name=args.engine, workers=args.workers, ray_address=args.ray_address)
        except ValidationError as error:
            raise UserError(format_validation_error(error, f"textbooks {name}", flags=True)) from None
        executor = make_executor(step_executor(cls, given, None, forced=args.engine))
    try:
        with _writing(out):
            run_step(step, out, executor=executor, resume=getattr(args, "resume", False))
    finally:
        if executor is not None:
            executor.close()


@contextlib.contextmanager
def _writing(out: Path) -> Iterator[None]:
    """What the file system refused while writing `out` (read-only, full, a file in the way) as a UserError."""
    try:
        yield
    except (UserError, EndedEarly, KeyboardInterrupt):
        raise
    except Exception as error:
        problem = filesystem_problem(error, out)
        if problem is None:
            raise
        raise UserError(problem) from None


def _run_command(args: argparse.Namespace) -> None:
    from textbooks.pipeline.recipe import load_recipe
    from textbooks.pipeline.runner import run_recipe

    recipe = load_recipe(args.recipe)
    if args.dry_run:
        from textbooks.pipeline.dryrun import format_plan, plan_recipe

        print(format_plan(plan_recipe(recipe), recipe))
        return
    out = args.out or Path("runs") / args.recipe.stem
    if out.exists() and not out.is_dir():
        raise UserError(f"run: {out} is a file; the run folder must be a folder (give another --out)")
    with _writing(out):
        run_recipe(recipe, out, engine_name=args.engine, until=args.until)


def _import_command(args: argparse.Namespace) -> None:
    from textbooks.model.hf import import_to_folder

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"import-hf: {args.out} is a file; the output must be a folder (give another --out)")
    with _writing(args.out):
        import_to_folder(args.model, args.out)
    print(f"import-hf: wrote {args.out} (train from it with `textbooks train --init {args.out}`)")


def quiet_when_piped() -> None:
    """The Hugging Face libraries' progress bars (loading weights, downloads) only on a terminal, like ours."""
    if not sys.stderr.isatty():
        for flag in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
            os.environ.setdefault(flag, "1")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) > 1 and argv[0] == "synth" and not argv[1].startswith("-"):
        argv = ["synth", "--kind", *argv[1:]]  # `textbooks synth exercises ...`: the kind as a word
    quiet_when_piped()
    try:
        if argv and argv[0] in STEPS:
            _step_command(argv[0], argv[1:])
        else:
            args = build_parser().parse_args(argv)
            if args.command == "run":
                _run_command(args)
            else:
                _import_command(args)
    except UserError as error:
        print(f"textbooks: error: {error}", file=sys.stderr)
        return 2
    except EndedEarly as ended:
        print(ended)
        return 0
    except KeyboardInterrupt:
        print("textbooks: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
