"""Looking inside a trained run, notebook style: load it, record one batch, draw from the record.

    .venv/bin/python experiments/inspect_run.py --workdir RUN [--split test] [--out DIR]

Every number drawn comes from `extract_attention(params, batch)`'s record through the pure
analyses; the run only adds the vocabulary for labels. The `# %%` cells run one by one in
editors that know them (VS Code, Jupytext).
"""

# %%
import argparse
import json
from pathlib import Path

import jax
import numpy as np

import slt_jax
from slt_jax import data
from slt_jax.analysis import alignment, figures, paper

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--workdir", required=True)
parser.add_argument("--split", default="test")
parser.add_argument("--out", default="inspect")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# %% A run and one batch of its split, as the data pipeline yields it.
run = slt_jax.load_run(args.workdir)
corpus = json.loads((Path(args.workdir) / "run.json").read_text())["data"]
examples = data.load_examples(corpus, args.split, run.config.data, run.vocab)
batch = next(data.make_batches(examples, run.config.data, run.config.train.batch_size))

# %% The record: nothing but the parameters and the batch.
record = slt_jax.extract_attention(run.params, batch)  # mode="paper": the authors' decoding
print({name: getattr(value, "shape", value) for name, value in vars(record).items()})

# %% One translation (Figures 2a and 2b): the first correct sample, or the first one.
correct = np.asarray(record.correct_B)
i = int(np.argmax(correct)) if correct.any() else 0
sample = jax.tree.map(lambda x: x[i], record)
n_calls = int(sample.length_B)
real = np.flatnonzero(sample.frame_mask_BxT)
tokens = [run.vocab.tokens[t] for t in np.asarray(sample.tokens_BxS[:n_calls])]
rows = np.asarray(paper.cross_attention_frames(sample.cross_pattern_BxSxHxT, sample.frame_mask_BxT))[:n_calls][:, real]
peaks = real[rows.argmax(1)][:-1]  # each gloss's most attended frame (the <eos> row left out)
poses = [figures.pose_points(sample.frames_BxTxF[p], run.config.data.groups, run.config.data.use_3d) for p in peaks]
title = " ".join(tokens[:-1])
figures.cross_attention_sample(rows, tokens, f"Cross-attention: {title}", poses,
                               np.searchsorted(real, peaks)).savefig(out / "fig2a.png", dpi=110)
diff = paper.self_minus_cross(sample.attn_out_BxSxQxD, sample.cross_attn_out_BxSxQxD)[:n_calls]
figures.self_minus_cross_sample(diff, tokens, f"Self - cross: {title}").savefig(out / "fig2b.png", dpi=110)

# %% The batch's averages by sentence length (Figure 3a) and its alignment scores.
rows_BxSx100 = jax.vmap(paper.cross_attention_rows)(record.cross_pattern_BxSxHxT, record.frame_mask_BxT)
steps_BxS = record.step_mask_BxS
n_groups = rows_BxSx100.shape[1] + 1
mean_GxSx100, counts_G = paper.group_mean(rows_BxSx100, record.length_B, record.correct_B, n_groups,
                                          steps_BxS[..., None])
figures.cross_attention_by_length(mean_GxSx100, counts_G, range(2, 7), "Mean cross-attention (one batch)"
                                  ).savefig(out / "fig3a.png", dpi=110)
attention_BxSxT = record.cross_pattern_BxSxHxT.mean(2)
diagonality_B = jax.vmap(alignment.diagonality)(attention_BxSxT, record.frame_mask_BxT, record.length_B - 1)
hits_B, known_B = jax.vmap(alignment.alignment_hits)(attention_BxSxT, record.frame_mask_BxT,
                                                     record.gloss_spans_BxSx2, record.length_B - 1)
print(f"exact match {correct.sum()}/{int(record.sample_mask_B.sum())}, "
      f"diagonality {np.nanmean(np.where(correct, diagonality_B, np.nan)):.3f} (correct, >= 2 glosses), "
      f"alignment accuracy {hits_B[correct].sum() / max(known_B[correct].sum(), 1):.3f} (correct)")
print(f"figures in {out}/")
