"""benchmarks/accelerator.py: the GPU path's steps, and how it records them.

The whole smoke run (`bash benchmarks/accelerator.sh --cpu --smoke`) takes minutes, too long for
the suite; here the plan is checked and the driver runs on stand-in steps.
"""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import accelerator
from benchmarks.accelerator import Step

STEPS = ["devices", "tests", "benchmark", "reproduce", "sweep"]


def test_smoke_size_runs_the_same_entry_points_as_the_full_run(tmp_path):
    full, smoke = accelerator.plan(tmp_path, smoke=False), accelerator.plan(tmp_path, smoke=True)
    assert [s.name for s in full] == [s.name for s in smoke] == STEPS
    for big, small in zip(full, smoke):
        assert big.command[:3] == small.command[:3] and big.result == small.result
    tests = dict(zip(STEPS, smoke))["tests"].command
    assert {t.split("::")[0] for t in tests if t.startswith("tests/")} == set(accelerator.TEST_FILES)
    reproduce, sweep = dict(zip(STEPS, full))["reproduce"].command, dict(zip(STEPS, full))["sweep"].command
    assert reproduce[reproduce.index("--corpus") + 1] == "gsl" and "--epochs" not in reproduce
    assert sweep[sweep.index("--corpus") + 1] == str(tmp_path / "reproduce" / "corpus_gsl")  # reproduce makes it
    assert "--smoke" in dict(zip(STEPS, smoke))["benchmark"].command
    capped = dict(zip(STEPS, accelerator.plan(tmp_path, smoke=False, epochs=30)))["reproduce"].command
    assert capped[capped.index("--epochs") + 1] == "30"


def test_pytest_counts_are_read_off_its_summary():
    assert accelerator.test_counts("2 failed, 17 passed, 1 skipped, 3 deselected in 61.2s") == {
        "failed": 2, "passed": 17, "skipped": 1, "deselected": 3}


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_steps_run_on_the_chosen_platform_and_a_failure_is_recorded(tmp_path, monkeypatch):
    figures = tmp_path / "figures.json"
    steps = [Step("devices", python("import json, os; print(json.dumps({'backend': os.environ['JAX_PLATFORMS']}))"), None),
             Step("benchmark", python(f"import json; json.dump({{'smoke': True, 'x': 1.5}}, open({str(figures)!r}, 'w'))"), figures),
             Step("sweep", python("import sys; print('it broke'); sys.exit(3)"), None)]
    monkeypatch.setattr(accelerator, "plan", lambda workdir, smoke, epochs: steps)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nHand-written.\n")
    out = tmp_path / "results.json"
    args = ["--cpu", "--workdir", str(tmp_path), "--out", str(out), "--doc", str(doc)]
    assert accelerator.main(args) == 1
    results = json.loads(out.read_text())
    assert results["mode"] == "cpu" and list(results["steps"]) == ["devices", "benchmark", "sweep"]
    assert results["steps"]["devices"]["found"] == {"backend": "cpu"}
    assert results["steps"]["benchmark"]["figures"] == {"smoke": True, "x": 1.5}
    assert results["steps"]["sweep"]["returncode"] == 3 and "it broke" in results["steps"]["sweep"]["output_tail"]
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written.\n") and "| sweep | failed (exit 3) |" in text
    accelerator.main(args)  # a second run replaces its section
    assert doc.read_text().count(accelerator.BEGIN) == 1

    # No device of the kind asked for: nothing else runs.
    steps[0] = Step("devices", python("raise RuntimeError('Unable to initialize backend cuda')"), None)
    assert accelerator.main(["--workdir", str(tmp_path), "--out", str(out), "--doc", str(doc)]) == 1
    results = json.loads(out.read_text())
    assert list(results["steps"]) == ["devices"] and "cuda" in results["steps"]["devices"]["output_tail"]


def test_the_script_is_valid_bash():
    script = Path(accelerator.ROOT) / "benchmarks" / "accelerator.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
