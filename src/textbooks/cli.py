"""The `textbooks` command: `run` a recipe, `report` on a run, or run one stage or job alone.

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

Each stage's and job's flags are its recipe keys (`num_perm` becomes `--num-perm`). Bad input ends with exit
code 2 and one message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import ValidationError

from textbooks import __version__
from textbooks.errors import UserError
from textbooks.jobs import Job, load_jobs
from textbooks.stage import Stage, StageConfig, load_stages


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


def _is_dict(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_dict(arg) for arg in typing.get_args(annotation))
    return annotation is dict or typing.get_origin(annotation) is dict


def _add_config_flags(parser: argparse.ArgumentParser, name: str, config_cls: type[StageConfig]) -> None:
    group = parser.add_argument_group(f"{name} settings (the same keys as in a recipe)")
    for field_name, info in config_cls.model_fields.items():
        flag = "--" + field_name.replace("_", "-")
        default = info.get_default(call_default_factory=True)
        help_text = f"{info.description or ''} (default: {default!r})"
        if _is_bool(info.annotation):
            group.add_argument(flag, dest=field_name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        elif _is_dict(info.annotation):
            group.add_argument(flag, dest=field_name, nargs="+", default=None, metavar="KEY=VALUE", help=help_text)
        elif _is_list(info.annotation):
            group.add_argument(flag, dest=field_name, nargs="+", default=None, choices=_choices(info.annotation),
                               metavar=None if _choices(info.annotation) else "VALUE", help=help_text)
        else:
            choices = _choices(info.annotation)
            group.add_argument(flag, dest=field_name, default=None, choices=choices,
                               metavar=None if choices else field_name.upper(), help=help_text)


def _flag_values(config_cls: type[StageConfig], args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags; KEY=VALUE pairs become a mapping, and a list item written as a YAML
    mapping (`--mixture '{input: a, weight: 3}'`) becomes one."""
    values: dict[str, Any] = {}
    for name, info in config_cls.model_fields.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if _is_dict(info.annotation):
            pairs = [item.partition("=") for item in value]
            bad = [item for item, (_, equals, _) in zip(value, pairs) if not equals]
            if bad:
                raise UserError(f"flag '--{name.replace('_', '-')}': expected KEY=VALUE pairs (got {bad[0]!r})")
            value = {key: yaml.safe_load(text) for key, _, text in pairs}
        elif isinstance(value, list):
            value = [yaml.safe_load(item) if item.lstrip().startswith("{") else item for item in value]
        values[name] = value
    return values


def _config_from_args(name: str, config_cls: type[StageConfig], args: argparse.Namespace) -> StageConfig:
    from textbooks.recipe import format_validation_error

    try:
        return config_cls.model_validate(_flag_values(config_cls, args))
    except ValidationError as error:
        raise UserError(format_validation_error(error, f"textbooks {name}", flags=True)) from None


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
        _add_config_flags(sub, name, stage_cls.Config)
    for name, job_cls in load_jobs().items():
        if not job_cls.own_command:
            continue
        sub = commands.add_parser(name, help=job_cls.summary, description=job_cls.summary)
        if name == "eval":
            sub.add_argument("input", nargs="?", default=None, metavar="MODEL", help=job_cls.input_help)
        elif job_cls.takes_input:
            sub.add_argument("--input", default=None, help=job_cls.input_help)
        sub.add_argument("--out", type=Path, required=True, help="the output folder")
        if name == "train":
            sub.add_argument("--resume", action="store_true",
                             help="continue from the last complete checkpoint in --out (settings must be the same)")
        _add_config_flags(sub, name, job_cls.Config)
    _add_interop_commands(commands)
    return parser


def _add_interop_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export-hf", help="write a checkpoint as a transformers PhiForCausalLM folder")
    export.add_argument("checkpoint", type=Path,
                        help="a model folder, or a training run folder (its best, else newest, checkpoint)")
    export.add_argument("out", type=Path, help="the folder to write (config.json, model.safetensors, tokenizer)")
    imported = commands.add_parser("import-hf", help="read a transformers Phi model into a textbooks model folder")
    imported.add_argument("model", help="a local PhiForCausalLM folder, or a hub name such as microsoft/phi-1")
    imported.add_argument("--out", type=Path, required=True, help="the model folder to write")


def _stage_from_args(stage_cls: type[Stage], args: argparse.Namespace) -> Stage:
    config = _config_from_args(stage_cls.name, stage_cls.Config, args)
    stage_input = getattr(args, "input", None)
    if stage_input is not None:
        from textbooks.inputs import plan_parts

        plan_parts(stage_input)  # fail early on a missing or unreadable input
    return stage_cls(config, stage_input)


def _job_command(job_cls: type[Job], args: argparse.Namespace) -> None:
    config = _config_from_args(job_cls.name, job_cls.Config, args)
    job = job_cls(config, getattr(args, "input", None))
    if getattr(args, "resume", False):
        job.resume = True
    from textbooks.jobs import run_job

    run_job(job, args.out)


def _interop_command(args: argparse.Namespace) -> None:
    from textbooks.model.hf import export_checkpoint, import_to_folder

    if args.command == "export-hf":
        out = export_checkpoint(args.checkpoint, args.out)
        print(f"export-hf: wrote {out} (load it with transformers.PhiForCausalLM.from_pretrained)")
    else:
        import_to_folder(args.model, args.out)
        print(f"import-hf: wrote {args.out} (train from it with `textbooks train --init {args.out}`)")


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
        elif args.command in ("export-hf", "import-hf"):
            _interop_command(args)
        elif args.command in load_jobs():
            _job_command(load_jobs()[args.command], args)
        else:
            _stage_command(args)
    except UserError as error:
        print(f"textbooks: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("textbooks: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0
