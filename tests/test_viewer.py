"""`slt-jax view`: the page's data against the attention record, and the page in a real browser."""

import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from slt_jax import data, features
from slt_jax.analysis import paper
from slt_jax.analysis.attribution import METHODS, attribute
from slt_jax.analysis.record import extract_attention, pad_vocab
from slt_jax.analysis.viewer import PAGE, POINTS, ensure_viewer, page_epoch, quantise, render, viewer_data
from slt_jax.cli import main
from slt_jax.config import EOS, PAD
from slt_jax.layout import LANDMARK_GROUPS, load_pose, write_text
from slt_jax.runs import load_run

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def page(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("view")
    assert main(["view", "--workdir", str(run_dir), "--out", str(out)]) == 0
    return out / PAGE


def embedded(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    start = text.index('<script id="viewer-data" type="application/json">')
    return json.loads(text[text.index(">", start) + 1: text.index("</script>", start)])


@pytest.fixture(scope="module")
def run(run_dir):
    """The trained run with <eos> made unlikely: a 3-epoch model would end every translation at
    once, this one decodes up to the run's length bound, so there are tokens to pick."""
    run = load_run(run_dir)
    logits = dict(run.params["logits"], bias=run.params["logits"]["bias"].at[EOS].add(-100.0))
    return run._replace(params={**run.params, "logits": logits})


@pytest.fixture(scope="module")
def talkative_page(run, tmp_path_factory):
    path = tmp_path_factory.mktemp("talkative") / PAGE
    write_text(path, render(viewer_data(run, "test")))
    return path


@pytest.fixture(scope="module")
def records(run, corpus_dir):
    """Per sample id: (the causal greedy record's fields of its row as numpy, its example)."""
    examples = data.load_examples(corpus_dir, "test", run.config.data, run.vocab)
    rows = {}
    for batch in data.make_batches(examples, run.config.data, run.config.train.batch_size):
        record = extract_attention(run.params, batch, "causal")
        for row in np.flatnonzero(batch["sample_mask"]):
            fields = {k: np.asarray(getattr(record, k)[row]) for k in (
                "tokens_BxS", "cross_pattern_BxSxHxT", "encoder_pattern_BxHxTxT", "self_pattern_BxSxHxS",
                "gloss_spans_BxSx2", "frame_mask_BxT", "correct_B")}
            fields["length"] = int(record.length_B[row])
            fields["share"] = np.asarray(paper.self_share(record.attn_out_BxSxQxD[row], record.cross_attn_out_BxSxQxD[row]))
            rows[examples[batch["index"][row]].id] = (fields, examples[batch["index"][row]])
    return rows


def test_quantise_keeps_per_mille_of_a_rounded_maximum():
    scale, q = quantise(np.array([[0.123456, 0.0617, 0.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(scale, [0.1235, 1.0])
    np.testing.assert_array_equal(q, [[1000, 500, 0], [0, 0, 0]])


def test_the_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "<script src" not in text and "stylesheet" not in text
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    assert "{{" not in text  # every placeholder filled
    assert page_epoch(page) == 3


def test_the_embedded_data_is_the_record_rounded(talkative_page, run, records, corpus_dir):
    rows = records
    shown = embedded(talkative_page)
    # Each translation shown up to the run's length bound (4 tokens, not the decoder's 12), as evaluate cuts it.
    assert {len(s["tokens"]) for s in shown["samples"]} == {run.length_bound} == {4}
    assert shown["heads"] == run.config.model.n_heads and shown["epoch"] == run.epoch
    assert [s["id"] for s in shown["samples"]] == [ex.id for _, ex in rows.values()]  # the split's order
    for s in shown["samples"]:
        r, ex = rows[s["id"]]
        steps, n = min(r["length"], run.length_bound), -(-len(ex.frames) // run.config.data.sample_rate)
        assert len(s["tokens"]) == len(s["cross"]) == len(s["share"]) == steps  # only real steps
        assert s["tokens"] == [run.vocab.tokens[t] for t in r["tokens_BxS"][:steps]]
        assert s["correct"] == bool(r["correct_B"])
        assert s["frames"] == list(range(0, len(ex.frames), run.config.data.sample_rate))  # only real frames
        cross = r["cross_pattern_BxSxHxT"][:steps, :, :n]
        scale = np.array([float(f"{m:.4g}") for m in cross.max((1, 2))])
        np.testing.assert_array_equal(s["cross_scale"], scale)
        np.testing.assert_array_equal(s["cross"], np.rint(cross / scale[:, None, None] * 1000))
        np.testing.assert_allclose(np.array(s["cross"]) * scale[:, None, None] / 1000, cross,
                                   atol=float(scale.max()) / 1000)
        encoder = r["encoder_pattern_BxHxTxT"][:, :n, :n].mean(0)
        np.testing.assert_allclose(np.array(s["encoder"]) * np.array(s["encoder_scale"])[:, None] / 1000, encoder,
                                   atol=float(encoder.max()) / 1000)
        np.testing.assert_allclose(s["share"], r["share"][:steps], atol=5e-4)
        for k, row in enumerate(s["self"]):
            np.testing.assert_allclose(np.array(row) / 1000, r["self_pattern_BxSxHxS"][k, :, : k + 1].mean(0), atol=5e-4)
        spans = r["gloss_spans_BxSx2"]
        assert [tuple(x[:2]) for x in s["spans"]] == [tuple(x) for x in spans[spans[:, 0] >= 0]]
        assert [x[2] for x in s["spans"]] == ex.reference.split()  # the conftest corpus's spans are glosses
        assert s["masked"] == np.flatnonzero(~r["frame_mask_BxT"][:n]).tolist()
        pose = load_pose(corpus_dir, s["id"])[s["frames"], 0]
        right = pose[:, LANDMARK_GROUPS["right_hand"][0] + np.array(POINTS["right_hand"]), :2]
        for drawn, xy in zip(s["pose"]["right_hand"], right):
            if np.isnan(xy).all():
                assert drawn is None
            else:
                np.testing.assert_array_equal(drawn, np.rint(xy * 1000).reshape(-1))


def test_the_page_holds_each_methods_attribution_of_the_decoded_tokens(talkative_page, run, records, corpus_dir):
    shown = {s["id"]: s for s in embedded(talkative_page)["samples"]}
    assert embedded(talkative_page)["methods"] == list(METHODS)
    examples = data.load_examples(corpus_dir, "test", run.config.data, run.vocab)
    parts_F, params = features.feature_parts(run.config.data), pad_vocab(run.params)
    for batch in data.make_batches(examples, run.config.data, run.config.train.batch_size):
        rows = np.flatnonzero(batch["sample_mask"])
        tokens = np.full_like(batch["target"], PAD)  # the page's shapes: its compiled programs serve
        tokens[rows] = [records[examples[batch["index"][row]].id][0]["tokens_BxS"] for row in rows]
        for method in METHODS:
            expected = attribute(params, batch, method, tokens_BxL=tokens, parts_F=parts_F)
            for row in rows:
                frames_LxT, parts_LxP = np.asarray(expected.frames_BxLxT[row]), np.asarray(expected.parts_BxLxP[row])
                s = shown[examples[batch["index"][row]].id]
                a, steps, n = s["attribution"][method], len(s["tokens"]), len(s["frames"])
                values = np.array(a["frames"]) * np.array(a["scale"])[:, None] / 1000
                assert values.shape == (steps, n)  # one strip per decoded token, over the real frames
                np.testing.assert_allclose(values, frames_LxT[:steps, :n], atol=float(max(a["scale"])) / 1000)
                np.testing.assert_allclose(values.sum(1), 1.0, atol=n * max(a["scale"]) / 2000 + 1e-3)
                assert not values[:, s["masked"]].any()  # frames without keypoints carry nothing
                if method == "rollout":
                    assert a["parts"] is None
                else:
                    np.testing.assert_allclose(a["parts"], parts_LxP[:steps], atol=5e-4)
                    np.testing.assert_allclose(np.sum(a["parts"], 1), 1.0, atol=2e-3)


def test_a_page_is_rewritten_only_for_new_parameters(run_dir, page, tmp_path):
    path = ensure_viewer(run_dir, tmp_path)
    written = path.stat().st_mtime_ns
    assert ensure_viewer(run_dir, tmp_path).stat().st_mtime_ns == written
    path.write_text(path.read_text().replace('"slt-jax-epoch" content="3"', '"slt-jax-epoch" content="1"'))
    ensure_viewer(run_dir, tmp_path)
    assert page_epoch(path) == 3


def _browser():
    """A headless Debian Chromium driven through chromedriver; nothing downloaded."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("Chromium or chromedriver is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='viewer-chromium-')}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()
    shutil.rmtree(driver.capabilities.get("chrome", {}).get("userDataDir", ""), ignore_errors=True)


def test_the_page_shows_the_record_in_chromium(talkative_page, records, browser):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    rows = records
    shown = embedded(talkative_page)
    browser.get(talkative_page.as_uri())
    viewer = lambda key: browser.execute_script(f"return window.viewer.{key};")
    before = viewer("cross")
    assert viewer("sample") == 0 and len(before) == len(shown["samples"][0]["frames"])

    # Pick another sample, then one of its decoded tokens.
    i = 3
    browser.find_element(By.CSS_SELECTOR, f'#samples tr[data-index="{i}"]').click()
    s = shown["samples"][i]
    r, _ = rows[s["id"]]
    k, n = 2, len(s["frames"])
    browser.find_element(By.CSS_SELECTOR, f'#tokens button[data-step="{k}"]').click()
    assert (viewer("sample"), viewer("step"), viewer("head")) == (i, k, "mean")
    cross = r["cross_pattern_BxSxHxT"][k, :, :n]
    tolerance = s["cross_scale"][k] / 1000
    np.testing.assert_allclose(viewer("cross"), cross.mean(0), atol=tolerance)
    assert viewer("cross") != before
    strip = browser.find_element(By.ID, "cross-strip")
    np.testing.assert_allclose(json.loads(strip.get_attribute("data-values")), viewer("cross"), atol=1e-6)

    # Each method's strip for the same token, and the gradient methods' body-part bars.
    for method in METHODS:
        a = s["attribution"][method]
        values = np.array(a["frames"][k]) * a["scale"][k] / 1000
        np.testing.assert_allclose(viewer("attribution")[method], values, atol=1e-9)
        strip = browser.find_element(By.ID, f"attr-{method}")
        np.testing.assert_allclose(json.loads(strip.get_attribute("data-values")), values, atol=1e-6)
        colours = np.asarray(Image.open(io.BytesIO(strip.screenshot_as_png)).convert("RGB")).reshape(-1, 3)
        assert len(np.unique(colours, axis=0)) > 10  # drawn in more than one shade
        bars = browser.find_elements(By.CSS_SELECTOR, f'.parts-group[data-method="{method}"] .part')
        if method == "rollout":
            assert bars == []
            continue
        assert [b.get_attribute("data-part") for b in bars] == list(features.PARTS)
        for bar, share in zip(bars, a["parts"][k]):
            assert float(bar.get_attribute("data-value")) == share
            fill, track = (bar.find_element(By.CLASS_NAME, c).rect["width"] for c in ("fill", "track"))
            assert abs(fill / track - share) < 0.02  # drawn to its share

    # One head instead of their average.
    Select(browser.find_element(By.ID, "head")).select_by_value("1")
    np.testing.assert_allclose(viewer("cross"), cross[1], atol=tolerance)

    # The scrubber moves the frame; the encoder strip shows that frame's attention.
    scrubber = browser.find_element(By.ID, "scrubber")
    scrubber.click()
    scrubber.send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert viewer("frame") == 2
    encoder = r["encoder_pattern_BxHxTxT"][:, 2, :n].mean(0)
    np.testing.assert_allclose(viewer("encoder"), encoder, atol=encoder.max() / 1000)

    # Play advances the frames on its own.
    browser.find_element(By.ID, "play").click()
    deadline = time.monotonic() + 5
    while viewer("frame") == 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    browser.find_element(By.ID, "play").click()
    assert viewer("frame") != 2 and viewer("playing") is False

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"), float)
    assert shot.std() > 20 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 200  # drawn, not blank
    pose = np.asarray(Image.open(io.BytesIO(browser.find_element(By.ID, "pose").screenshot_as_png)).convert("L"), float)
    assert (pose < 140).mean() > 0.003  # the stick figure's dark lines are on the canvas
