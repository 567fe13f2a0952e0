"""The `textbooks` command: `run` a recipe, `report` on a run, or run one stage alone.

    textbooks run recipes/demo.yaml --out runs/demo
    textbooks ingest --source stdlib --units function class --out runs/x/ingest
    textbooks dedup --input runs/x/ingest --threshold 0.8 --out runs/x/dedup
    textbooks report runs/demo

Each stage's flags are its recipe keys (`num_perm` becomes `--num-perm`). Bad input ends with exit code 2 and
one message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from textbooks import __version__
from textbooks.errors import UserError
from textbooks.stage import Stage, load_stages


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return origin in (list, tuple)


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _choices(annotation: Any) -> list[str] | None:
    """The allowed values of a Literal field (or of a list of Literals, or an optional Literal)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        if arg is not type(None) and (found := _choices(arg)):
            return found
    return None


def _add_config_flags(parser: argparse.ArgumentParser, stage_cls: type[Stage]) -> None:
    group = parser.add_argument_group(f"{stage_cls.name} settings (the same keys as in a recipe)")
    for name, info in stage_cls.Config.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = info.get_default(call_default_factory=True)
        help_text = f"{info.description or ''} (default: {default!r})"
        if _is_bool(info.annotation):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif _is_list(info.annotation):
            group.add_argument(flag, dest=name, nargs="+", default=None, choices=_choices(info.annotation),
                               metavar=None if _choices(info.annotation) else "VALUE", help=help_text)
        else:
            choices = _choices(info.annotation)
            group.add_argument(flag, dest=name, default=None, choices=choices,
                               metavar=None if choices else name.upper(), help=help_text)


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["local", "ray"], default=None, help="where stages run (default: local)")
    parser.add_argument("--workers", type=int, default=None, help="local engine processes (default: every core)")
    parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start one here)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textbooks", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"textbooks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a recipe's stages in order (finished stages are skipped)")
    run.add_argument("recipe", type=Path, help="recipe YAML file, e.g. recipes/demo.yaml")
    run.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)")
    run.add_argument("--engine", choices=["local", "ray"], default=None, help="override the recipe's engine")

    report = commands.add_parser("report", help="write report.html and report.md for a run folder")
    report.add_argument("run_dir", type=Path, help="a folder that `textbooks run` wrote")
    report.add_argument("--title", default="textbooks run")

    for name, stage_cls in load_stages().items():
        sub = commands.add_parser(name, help=stage_cls.summary, description=stage_cls.summary)
        if stage_cls.takes_input:
            sub.add_argument("--input", required=True,
                             help="a dataset folder, Parquet/JSONL file or glob, or hf:NAME")
        sub.add_argument("--out", type=Path, required=True, help="the output dataset folder")
        _add_engine_flags(sub)
        _add_config_flags(sub, stage_cls)
    return parser


def _stage_from_args(stage_cls: type[Stage], args: argparse.Namespace) -> Stage:
    from textbooks.recipe import format_validation_error

    values = {name: getattr(args, name) for name in stage_cls.Config.model_fields
              if getattr(args, name, None) is not None}
    try:
        config = stage_cls.Config.model_validate(values)
    except ValidationError as error:
        raise UserError(format_validation_error(error, f"textbooks {stage_cls.name}", flags=True)) from None
    stage_input = getattr(args, "input", None)
    if stage_input is not None:
        from textbooks.inputs import plan_parts

        plan_parts(stage_input)  # fail early on a missing or unreadable input
    return stage_cls(config, stage_input)


def _run_command(args: argparse.Namespace) -> None:
    from textbooks.recipe import load_recipe
    from textbooks.runner import run_recipe

    recipe = load_recipe(args.recipe)
    out = args.out or Path("runs") / args.recipe.stem
    run_recipe(recipe, out, engine_name=args.engine)


def _stage_command(args: argparse.Namespace) -> None:
    from textbooks.engine import make_engine
    from textbooks.runner import run_stage

    stage_cls = load_stages()[args.command]
    stage = _stage_from_args(stage_cls, args)
    engine = make_engine(args.engine or "local", args.workers, args.ray_address)
    try:
        run_stage(stage, args.out, engine)
    finally:
        engine.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            _run_command(args)
        elif args.command == "report":
            from textbooks.report import write_report

            if not args.run_dir.is_dir():
                raise UserError(f"{args.run_dir}: no such run folder")
            write_report(args.run_dir, title=args.title)
        else:
            _stage_command(args)
    except UserError as error:
        print(f"textbooks: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("textbooks: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
