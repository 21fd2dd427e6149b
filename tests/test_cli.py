"""The command line's own surface: --version, and an example in every sub-command's --help."""

from __future__ import annotations

import argparse
import importlib.metadata

import pytest

from slt_jax import cli
from slt_jax.pipelines.designs import VARIANT_HELP, VARIANT_OPTIONS


def sub_commands(parser: argparse.ArgumentParser, prefix: str = "slt-jax") -> dict[str, argparse.ArgumentParser]:
    """Every leaf sub-command's parser by its full name (`slt-jax prepare csv`), and the groups between."""
    found = {}
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix} {name}"] = sub
                found |= sub_commands(sub, f"{prefix} {name}")
    return found


def test_every_sub_command_help_ends_with_an_example_of_itself():
    commands = sub_commands(cli.build_parser())
    assert {"slt-jax train", "slt-jax extract", "slt-jax prepare csv", "slt-jax prepare phoenix"} <= commands.keys()
    for name, parser in commands.items():
        text = parser.format_help()
        heading = "example:" if "example:" in text else "examples:"
        example = text.split(f"\n{heading}\n", 1)[-1]
        assert example != text, f"{name} --help has no example"
        assert f"  {name} " in example.replace(".venv-extract/bin/", ""), f"{name}: the example does not run {name}"


def test_help_explains_what_a_new_user_needs():
    commands = sub_commands(cli.build_parser())
    assert "pip install -e '.[extract]'" in commands["slt-jax extract"].format_help()
    assert "novel: small's size, but every sample signs its own new sentence" in \
        " ".join(commands["slt-jax synth"].format_help().split())
    assert VARIANT_HELP.keys() == VARIANT_OPTIONS.keys()
    ablate = " ".join(commands["slt-jax ablate"].format_help().split())
    assert all(f"{name} ({text})" in ablate for name, text in VARIANT_HELP.items())


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"slt-jax {importlib.metadata.version('slt-jax')}\n"
