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


# The smallest command line of every command that trains, but the study (its own recipe, below).
TRAINING = {"train": ["train", "--data", "d", "--workdir", "w"], "sweep": ["sweep", "--data", "d", "--workdir", "w"],
            "ablate": ["ablate", "--data", "d", "--workdir", "w"], "reproduce": ["reproduce", "--out", "o"]}


def _configs(argv: list[str]):
    args = build_parser().parse_args(argv)
    return args, args.resolve_configs(args)


def test_every_training_command_resolves_the_same_defaults():
    from slt_jax.pipelines.designs import DEFAULT_SEEDS
    from slt_jax.config import recipe_name

    trainers = {name for name, p in _commands(build_parser()) if "--recipe" in _options(p)}
    assert trainers == {*TRAINING, "study"}
    for name, argv in TRAINING.items():
        args, configs = _configs(argv)
        assert configs and {(recipe_name(c.train), c.model.dropout_rng) for c in configs} == {("converge", "philox")}, name
        assert getattr(args, "seeds", None) == {"train": None, "reproduce": 2}.get(name, DEFAULT_SEEDS), name
        assert {recipe_name(c.train) for c in _configs([*argv, "--recipe", "authors"])[1]} == {"authors"}, name
        # --epochs: a cap; 0 is the same as leaving it out.
        assert _configs([*argv, "--epochs", "0"])[1] == configs, name
        assert {c.train.max_epochs for c in _configs([*argv, "--epochs", "7"])[1]} == {7}, name
        assert {c.train.max_epochs for c in configs} == {1000}, name
    args, cells = _configs(["study", "--out", "o", "--cells", "small-gloss16,small-gloss16-normalised"])
    assert {(recipe_name(c.train), c.model.dropout_rng) for c in cells} == {("fast", "hash")} and args.seeds == DEFAULT_SEEDS


def test_the_main_job_trains_gloss16_on_normalised_features_beside_the_papers_configs():
    _, configs = _configs(TRAINING["reproduce"])
    assert [c.name for c in configs] == ["gloss16", "gloss16-normalised", "gloss32", "gloss64", "text16"]
    plain, normalised = configs[:2]
    assert normalised.data.body_norm == "sequence" and normalised.data.hand_norm and not plain.data.hand_norm
    assert normalised.replace(name="gloss16", data=plain.data) == plain
