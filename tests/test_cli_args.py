"""Every command's options are explained in its --help, and a shared option parses alike everywhere."""

from __future__ import annotations

import argparse

from slt_jax.cli import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(name, parser) of every leaf command, e.g. ("prepare gsl", ...)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix}{name} ")
            return
    yield prefix.strip(), parser


def _options(parser: argparse.ArgumentParser):
    return {a.option_strings[-1]: a for a in parser._actions if a.option_strings and a.dest != "help"}


def test_every_option_of_every_command_has_help():
    commands = dict(_commands(build_parser()))
    assert {"train", "sweep", "prepare gsl", "prepare pose", "synth", "ablate", "analyze"} <= set(commands)
    unexplained = [f"{name} {flag}" for name, p in commands.items() for flag, a in _options(p).items()
                   if not a.help or a.help == argparse.SUPPRESS]
    assert not unexplained


def test_a_shared_option_has_one_destination_type_and_action():
    seen: dict[str, dict[tuple, list[str]]] = {}
    for name, p in _commands(build_parser()):
        for flag, a in _options(p).items():
            if flag in ("--set", "--epochs", "--split", "--quiet", "--seeds", "--workers", "--workdir"):
                key = (a.dest, a.type, type(a).__name__, a.metavar)
                seen.setdefault(flag, {}).setdefault(key, []).append(name)
    assert len(seen["--set"]) == 1 and len(seen["--quiet"]) == 1
    assert {flag: list(kinds) for flag, kinds in seen.items() if len(kinds) > 1} == {}
    args = build_parser().parse_args(["sweep", "--data", "d", "--workdir", "w", "--set", "a.b=1", "--set", "c.d=2"])
    assert args.overrides == ["a.b=1", "c.d=2"] and args.epochs is None and args.split == "test" and not args.quiet
