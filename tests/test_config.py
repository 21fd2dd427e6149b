"""Config values are checked once, when the config is built."""

import dataclasses

import pytest

from slt_jax.config import (DROPOUT_RNGS, EVAL_SAMPLINGS, INITS, PRESETS, SCHEDULES, SOURCES, TARGETS, ModelConfig,
                            get_config)
from slt_jax.features import BODY_NORMS
from slt_jax.initializers import INITIALIZERS


@pytest.mark.parametrize("field,allowed", [("data.target", TARGETS), ("data.source", SOURCES),
                                           ("data.body_norm", BODY_NORMS), ("data.eval_sampling", EVAL_SAMPLINGS),
                                           ("train.schedule", SCHEDULES)])
def test_an_unknown_data_or_train_choice_is_refused_when_the_config_is_built(field, allowed):
    with pytest.raises(ValueError, match=rf"{field.replace('.', '[.]')}='bogus'; choose from {', '.join(allowed)}"):
        get_config("gloss16", [f"{field}=bogus"])
    for value in allowed:
        section, name = field.split(".")
        assert getattr(getattr(get_config("gloss16", [f"{field}={value}"]), section), name) == value


@pytest.mark.parametrize("field,allowed", [("dropout_rng", DROPOUT_RNGS), ("init", INITS)])
def test_an_unknown_model_choice_is_refused_naming_the_field_and_its_values(field, allowed):
    message = rf"model\.{field}='bogus'; choose from {', '.join(allowed)}"
    with pytest.raises(ValueError, match=message):
        get_config("gloss16", [f"model.{field}=bogus"])
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PRESETS["tiny"].model, **{field: "bogus"})
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{field: "bogus"})
    for value in allowed:
        assert getattr(get_config("gloss16", [f"model.{field}={value}"]).model, field) == value


def test_every_allowed_init_has_its_initialisers():
    assert tuple(INITIALIZERS) == INITS
