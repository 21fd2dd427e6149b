"""`slt-jax view`: one static page to watch the signer while the model translates.

The page (viewer_assets/ beside this file: template, script and style, inlined with the data, so
it needs no server and no network) shows, per sample of a split: the pose sequence as an animated stick figure,
the greedy translation as a row of tokens, and for the chosen token its cross-attention over the
frames (heads averaged, or one head) beside each attribution method's frames and body-part shares
(`attribute` of the decoded tokens), the true signs, the step's self-vs-cross share, and the
encoder self-attention of the frame under the cursor.

Everything drawn comes from `extract_attention` records and the corpus:

    page = viewer_data(run, "test")          # records + poses -> a compact JSON-able dict
    write_text(path, render(page))           # write_viewer(workdir, "test", out) does both

Clips without a reference (`slt-jax translate --view`) go through `page_data` with their own poses.

Frames are the sampled frames the model saw (one per `data.sample_rate` video frames, chosen as
evaluation chooses them); each keeps its video frame number, and the poses drawn are the
corpus's own landmarks at those frames (body, hands and face outline, whatever features the
model used). Padding is dropped: a sample has its own frames and its own decoding steps.

Compact values: attention is stored as integers in per-mille of a scale (each step's maximum
over heads and frames for cross-attention, each step's maximum for an attribution, each query
frame's maximum for the encoder) with the scale to 4 significant digits, so value =
q * scale / 1000 (`quantise`); landmark coordinates as integers in thousandths of the image;
shares (body parts' too) and probabilities to 3 decimals.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import jax
import numpy as np

from slt_jax import data, features
from slt_jax.analysis import paper
from slt_jax.analysis.attribution import METHODS, attribute
from slt_jax.analysis.record import extract_attention, pad_frames, pad_vocab, split_length
from slt_jax.examples import token_glosses
from slt_jax.layout import LANDMARK_GROUPS, load_pose, read_annotations, read_metadata, write_text
from slt_jax.synth import landmarks as lm
from slt_jax.runs import best_epoch, load_run

MODES = ("causal", "paper")
PAGE = "viewer.html"
_ASSETS = Path(__file__).with_name("viewer_assets")

# The landmarks drawn, as indices within their part, and the lines between them (pairs of
# positions in those lists). Legs, the inner face mesh and the nose are left out: the face is
# most of a page's size.
_BODY = (lm.NOSE, lm.LEFT_EAR, lm.RIGHT_EAR, lm.LEFT_SHOULDER, lm.RIGHT_SHOULDER, lm.LEFT_ELBOW,
         lm.RIGHT_ELBOW, lm.LEFT_WRIST, lm.RIGHT_WRIST, lm.LEFT_HIP, lm.RIGHT_HIP)
# Every other point of each face contour, its ends kept (50 points instead of 78).
_FACE_RUNS = tuple(run[:-1:2] + run[-1:] for run in (
    lm.FACE_OVAL, lm.LIPS_OUTER_UPPER, lm.LIPS_OUTER_LOWER, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER,
    lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.RIGHT_BROW_UPPER, lm.LEFT_BROW_UPPER))
_FACE = tuple(sorted({i for run in _FACE_RUNS for i in run}))
POINTS = {"body": _BODY, "face": _FACE, "left_hand": tuple(range(lm.N_HAND)), "right_hand": tuple(range(lm.N_HAND))}


def _edges(pairs, kept) -> list[list[int]]:
    where = {p: i for i, p in enumerate(kept)}
    return [[where[a], where[b]] for a, b in pairs]


EDGES = {
    "body": _edges(lm.BODY_EDGES, _BODY),
    "face": _edges([(a, b) for run in _FACE_RUNS for a, b in zip(run, run[1:])], _FACE),
    "hand": _edges(lm.HAND_EDGES, POINTS["left_hand"]),
}
WRISTS = {"left_hand": _BODY.index(lm.LEFT_WRIST), "right_hand": _BODY.index(lm.RIGHT_WRIST)}


def quantise(values: np.ndarray, axis=-1) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative values -> (scale, per-mille integers), value ~ q * scale / 1000.

    The scale is the maximum over `axis` rounded to 4 significant digits (1 where all are 0),
    so q lies in [0, 1000] and the error is at most scale / 2000.
    """
    values = np.asarray(values, np.float64)
    top = np.max(values, axis=axis, keepdims=True)
    scale = np.vectorize(lambda x: float(f"{x:.4g}") if x > 0 else 1.0, otypes=[np.float64])(top)
    return np.squeeze(scale, axis), np.rint(values / scale * 1000).astype(np.int64)


def _round(x, digits: int = 3) -> list:
    return np.round(np.asarray(x, np.float64), digits).tolist()


def attribution_data(frames_SxT: np.ndarray, parts_SxP: np.ndarray) -> dict:
    """One method's attributions of a sample's steps: frames quantised per step (`quantise`),
    part shares to 3 decimals (None for rollout, which has none)."""
    scale, q = quantise(frames_SxT, axis=1)
    return {"scale": scale.tolist(), "frames": q.tolist(),
            "parts": None if np.isnan(parts_SxP).all() else _round(parts_SxP)}


def decoded_attributions(params, batch: dict, tokens_BxS, parts_F) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each method's (frames_BxSxT, parts_BxSxP) for the decoded tokens (`attribute`)."""
    attributions = [attribute(params, batch, m, tokens_BxL=tokens_BxS, parts_F=parts_F) for m in METHODS]
    return jax.device_get({a.method: (a.frames_BxLxT, a.parts_BxLxP) for a in attributions})


def pose_frames(pose: np.ndarray, frames: np.ndarray) -> dict[str, list]:
    """The drawn landmarks of the first person at `frames`: per part, per frame, a flat list
    x0, y0, x1, y1, ... in thousandths of the image (None for a missing point), or None when the
    part was not detected in that frame."""
    out = {}
    for part, kept in POINTS.items():
        xy_FxPx2 = pose[frames, 0][:, LANDMARK_GROUPS[part][0] + np.asarray(kept), :2].astype(np.float64)
        missing_FxPx2 = np.isnan(xy_FxPx2)
        flat = np.rint(np.where(missing_FxPx2, 0, xy_FxPx2) * 1000).astype(np.int64).astype(object)
        flat[missing_FxPx2] = None
        out[part] = [None if gone.all() else row for row, gone in
                     zip(flat.reshape(len(frames), -1).tolist(), missing_FxPx2.reshape(len(frames), -1))]
    return out


def sample_data(record: dict, row: int, n_frames: int, source_frames: np.ndarray, tokens: list[str],
                signs: list[str | None], pose: dict, sample_id: str, reference: str | None, hypothesis: str) -> dict:
    """One sample of the page from one row of a record (its fields as numpy arrays, plus `share`).

    Args:
      record: AttentionRecord fields (numpy), `share_BxS` (paper.self_share of each row) and
        `attribution` (`decoded_attributions`).
      row: the sample's row in the record.
      n_frames: its sampled frames (the rest of the row is bucket padding).
      source_frames: the video frame of each sampled frame.
      tokens: the vocabulary's tokens, to name the decoded ids.
      signs: per reference token, the gloss it renders (None: a word no gloss carries), naming
        its span.
      pose: `pose_frames` of its sampled frames.
      sample_id, reference, hypothesis: shown in the picker; a clip without a reference (None)
        has no verdict and no reference tokens.
    """
    n, steps = n_frames, int(record["length_B"][row])
    ids = record["tokens_BxS"][row, :steps]
    cross_scale, cross_q = quantise(record["cross_pattern_BxSxHxT"][row, :steps, :, :n], axis=(1, 2))
    encoder_scale, encoder_q = quantise(record["encoder_pattern_BxHxTxT"][row, :, :n, :n].mean(0), axis=1)
    self_SxS = record["self_pattern_BxSxHxS"][row, :steps].mean(1)
    spans = record["gloss_spans_BxSx2"][row]
    scored = reference is not None
    return {
        "id": sample_id, "reference": reference, "hypothesis": hypothesis,
        "correct": reference.split() == hypothesis.split() if scored else None,  # as `evaluate` counts it
        "tokens": [tokens[t] for t in ids],
        "target": [tokens[t] for t in record["target_BxS"][row, :steps]] if scored else [],
        "prob": _round(np.exp(record["log_probs_BxS"][row, :steps])),
        "share": _round(record["share_BxS"][row, :steps]),
        "self": [np.rint(self_SxS[s, : s + 1] * 1000).astype(int).tolist() for s in range(steps)],
        "cross_scale": cross_scale.tolist(), "cross": cross_q.tolist(),
        "encoder_scale": encoder_scale.tolist(), "encoder": encoder_q.tolist(),
        "attribution": {m: attribution_data(frames[row, :steps, :n], parts[row, :steps])
                        for m, (frames, parts) in record["attribution"].items()},
        "frames": np.asarray(source_frames[:n]).tolist(),
        "masked": np.flatnonzero(~record["frame_mask_BxT"][row, :n]).tolist(),
        # Per reference token: [start, end, gloss] of its sign, None where unknown.
        "spans": [[int(s), int(e), g] if s >= 0 else None for (s, e), g in zip(spans, signs)],
        "pose": pose,
    }


def viewer_data(run, split: str = "test", data_dir=None, mode: str = "causal") -> dict:
    """Translates a split with `extract_attention` and gathers what the page shows.

    Args:
      run: a `load_run` result.
      split: train, val or test.
      data_dir: the corpus (default: the one the run was trained on).
      mode: the record's decoding mode; "causal" (as trained) or "paper". With the authors' one
        decoder layer both give the same tokens, patterns and shares (the newest row is the same).

    Returns:
      The page's data (`page_data`) of the split's samples, in the split's order.
    """
    data_dir = Path(data_dir or run.data_dir)
    examples = data.load_examples(data_dir, split, run.config.data, run.vocab)
    signs = {s.id: _token_signs(s, run.config.data) for s in read_annotations(data_dir)}
    metadata = read_metadata(data_dir)
    return page_data(run, examples, lambda sample_id: load_pose(data_dir, sample_id), signs, mode, split=split,
                     fps=float(metadata.get("fps", 30)),  # the video's frame rate
                     aspect=float(metadata.get("width", 1)) / float(metadata.get("height", 1)))


def page_data(run, examples: list[data.Example], pose_of, signs: dict[str, list[str | None]] | None,
              mode: str = "causal", **facts) -> dict:
    """Translates examples with `extract_attention` and gathers what the page shows, each
    translation up to the run's length bound (`Run.length_bound`, as `evaluate` decodes).

    Args:
      run: a `load_run` result.
      examples: a split's examples, or clips' without a reference.
      pose_of: sample id -> its pose (frames, people, 543, dims), to draw.
      signs: sample id -> per reference token, the gloss it renders (`sample_data`); None for
        clips without a reference (`slt-jax translate --view`).
      mode: "causal" or "paper" (see `viewer_data`).
      facts: the page's `split`, `fps` and `aspect`.

    Returns:
      The page's data: run facts, drawing edges, playback rate, attribution methods and one
      entry per example (`sample_data`), in the examples' order.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    config = run.config.data
    fields = ("tokens_BxS", "length_B", "log_probs_BxS", "cross_pattern_BxSxHxT", "self_pattern_BxSxHxS",
              "encoder_pattern_BxHxTxT", "frame_mask_BxT", "target_BxS", "gloss_spans_BxSx2")
    samples, bound = {}, run.length_bound
    # Padded as analyze pads (record.pad_frames, pad_vocab): the same shapes, so the record reuses
    # analyze's compiled program (and other seeds' and configs') instead of compiling per bucket;
    # it decodes analyze's steps, of which a translation shows those within the length bound.
    longest, params = split_length(examples, run.config), pad_vocab(run.params)
    parts_F = features.feature_parts(config)
    for batch in data.make_batches(examples, config, run.config.train.batch_size):
        record = extract_attention(params, pad_frames(batch, max(longest, batch["frames"].shape[1])), mode)
        arrays = jax.device_get({name: getattr(record, name) for name in fields}
                                | {"share_BxS": _self_share(record.attn_out_BxSxQxD, record.cross_attn_out_BxSxQxD)})
        arrays["length_B"] = np.minimum(arrays["length_B"], bound)
        # At the batch's own frames and all decoding steps: the shapes `analyze` attributes the
        # references at, so within `slt-jax reproduce` the two share compiled programs.
        arrays["attribution"] = decoded_attributions(params, batch, arrays["tokens_BxS"], parts_F)
        length = batch["frames"].shape[1]
        for row in np.flatnonzero(batch["sample_mask"]):
            ex = examples[batch["index"][row]]
            picked = data.sample_frames(len(ex.frames), config.sample_rate, _eval_rng(ex.id, config))[:length]
            samples[int(batch["index"][row])] = sample_data(
                arrays, row, len(picked), picked, run.vocab.tokens, (signs or {}).get(ex.id, []),
                pose_frames(pose_of(ex.id), picked), ex.id, None if signs is None else ex.reference,
                run.vocab.decode(arrays["tokens_BxS"][row, :bound]))
    return {
        "run": str(run.workdir), "config": run.config.name, "target": config.target, "split": facts["split"],
        "epoch": run.epoch, "mode": mode, "heads": run.config.model.n_heads,
        "fps": facts["fps"], "sample_rate": config.sample_rate, "aspect": facts["aspect"],
        "edges": EDGES, "wrists": WRISTS, "methods": METHODS, "parts": features.PARTS,
        "samples": [samples[i] for i in sorted(samples)],
    }


_self_share = jax.jit(jax.vmap(paper.self_share))


def _token_signs(sample, config) -> list[str | None]:
    """The gloss each target token renders (`token_glosses`); empty when unknown."""
    glosses = sample.gloss.split()
    return [None if g is None else glosses[g] for g in token_glosses(sample, config) or ()]


def _eval_rng(sample_id: str, config):
    """The generator `make_batches` picks an evaluation sample's frames with (None: the first
    frame of each chunk). `data.eval_frame_rng` (data.eval_sampling="random") is used where this
    checkout has it."""
    pick = getattr(data, "eval_frame_rng", None)
    return pick(sample_id, config) if pick else None


def render(page_data: dict) -> str:
    """The page: the template with its stylesheet, script and data inlined."""
    payload = json.dumps(page_data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    template = (_ASSETS / "viewer.html").read_text(encoding="utf-8")
    title = f"{page_data['config']} · {Path(page_data['run']).name} · {page_data['split']}"
    return (template.replace("{{TITLE}}", html.escape(title))
            .replace("{{EPOCH}}", str(page_data["epoch"]))
            .replace("{{STYLE}}", (_ASSETS / "viewer.css").read_text(encoding="utf-8"))
            .replace("{{SCRIPT}}", (_ASSETS / "viewer.js").read_text(encoding="utf-8"))
            .replace("{{DATA}}", payload))


def write_viewer(workdir, split: str = "test", out=None, data_dir=None, mode: str = "causal") -> Path:
    """Writes the viewer page of a trained run and returns its path.

    Args:
      workdir: a training workdir (`slt-jax train`).
      split: the split to translate.
      out: output folder (default: <workdir>/view_<split>); the page is out/viewer.html.
      data_dir: the corpus (default: the one the run was trained on).
      mode: "causal" or "paper" (see `viewer_data`).
    """
    run = load_run(workdir)
    path = Path(out or Path(workdir) / f"view_{split}") / PAGE
    write_text(path, render(viewer_data(run, split, data_dir, mode)))
    return path


def page_epoch(path) -> int | None:
    """The training epoch of the parameters a written page shows (None without a page)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        head = f.read(1024)
    marker = '<meta name="slt-jax-epoch" content="'
    start = head.find(marker) + len(marker)
    return int(head[start:head.index('"', start)]) if start >= len(marker) else None


def ensure_viewer(workdir, out, split: str = "test") -> Path:
    """`write_viewer` into `out` unless its page already shows the run's best parameters
    (`slt-jax reproduce` calls this for every analysed run)."""
    path = Path(out) / PAGE
    if page_epoch(path) is None or page_epoch(path) != best_epoch(workdir):
        write_viewer(workdir, split, out)
    return path
