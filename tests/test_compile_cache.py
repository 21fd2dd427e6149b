"""The persistent compilation cache the `slt-jax` command turns on: a second process loads the
programs the first compiled, and an empty setting switches it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from slt_jax.compile_cache import CACHE_ENV

# Compiles a Philox dropout mask (every program cached, however fast it compiled) and reports the
# persistent cache's hits and misses.
COMPILE_A_MASK = """
import json, jax
from slt_jax import compile_cache, dropout
events = []
jax.monitoring.register_event_listener(lambda event, **kw: events.append(event))
compile_cache.MIN_COMPILE_S = 0
compile_cache.cache_compiled_programs()
jax.block_until_ready(jax.jit(lambda k: dropout.philox_keep_mask(k, (64, 300), 0.8))(jax.random.key(0)))
print(json.dumps({"hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses")}))
"""


def compile_a_mask(setting: str) -> dict:
    env = {**os.environ, CACHE_ENV: setting}
    done = subprocess.run([sys.executable, "-c", COMPILE_A_MASK], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    first = compile_a_mask(str(tmp_path))
    assert first["misses"] >= 1 and first["hits"] == 0
    assert any(tmp_path.iterdir())
    assert compile_a_mask(str(tmp_path)) == {"hits": first["misses"], "misses": 0}


def test_an_empty_setting_switches_the_cache_off():
    assert compile_a_mask("") == {"hits": 0, "misses": 0}
