"""Data-parallel training over several devices gives what one device gives.

The check runs in a subprocess with 4 virtual CPU devices (XLA_FLAGS must be set before jax
starts, and this test process has already started it with one device).
"""

import json
import os
import subprocess
import sys
import textwrap

from slt_jax.config import get_config
from slt_jax.train import train

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np, optax
    from slt_jax import data
    from slt_jax.config import get_config
    from slt_jax.model import Transformer
    from slt_jax.runs import init_params, resolve
    from slt_jax.train import TrainState, batch_sharding, make_train_step, model_inputs, replicated, train

    corpus, workdir = sys.argv[1:]
    assert jax.device_count() == 4
    config = get_config("tiny")
    vocab = data.fit_vocab(corpus, config.data)
    config = resolve(config, vocab)
    batch = next(data.make_batches(data.load_examples(corpus, "train", config.data, vocab), config.data, 8))
    optimizer = optax.adam(1e-3)

    def one_step(sharding):
        params = init_params(config, jax.random.key(0))
        state = replicated(sharding, TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params)))
        step = make_train_step(Transformer(config.model), optimizer)
        state, sums = step(state, model_inputs(batch, sharding), replicated(sharding, jax.random.key(1)))
        return state, sums

    sharding = batch_sharding(8)
    (single, single_sums), (sharded, sharded_sums) = one_step(None), one_step(sharding)
    assert len(sharded.params["logits"]["kernel"].sharding.device_set) == 4
    # Key biases are left out: their gradient is rounding noise (softmax ignores them), and
    # Adam's first step turns any noise into a full-size step.
    params_gap = max(float(jnp.max(jnp.abs(a - b)))
                     for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(single.params),
                                             jax.tree.leaves(sharded.params))
                     if "'key']['bias']" not in jax.tree_util.keystr(path))
    result = train(get_config("tiny", ["train.max_epochs=2"]), corpus, workdir, progress=False)
    print(json.dumps({"loss": [float(single_sums["loss_sum"]), float(sharded_sums["loss_sum"])],
                      "params_gap": params_gap, "fit_loss": result["train_loss"]}))
""")


def test_sharded_step_and_training_match_one_device(corpus_dir, tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(corpus_dir), str(tmp_path / "sharded")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    single_loss, sharded_loss = got["loss"]
    assert abs(single_loss - sharded_loss) < 1e-4 * abs(single_loss)
    assert got["params_gap"] < 1e-4  # Adam steps are 3e-3 here: agreement to a few % of one step
    one_device = train(get_config("tiny", ["train.max_epochs=2"]), corpus_dir, tmp_path / "single", progress=False)
    assert abs(got["fit_loss"] - one_device["train_loss"]) < 1e-4 * one_device["train_loss"]
