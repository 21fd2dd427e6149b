"""Looking inside a trained model: records of what it attends to, and pure analyses over them.

  record         `extract_attention(params, batch) -> AttentionRecord`, `run_with_cache`
  paper          the authors' analyses (SignAttention §4-5) with a cleaner variant beside each
  alignment      how diagonal, monotonic and clustered cross-attention is; agreement with
                 known gloss spans (alignment accuracy, sign-boundary F1)
  faithfulness   deleting the most attended frames versus random ones; a uniform-attention baseline
  figures        matplotlib drawings of what the analyses return
  report         `analyze`: a split -> figures and analysis.json (the `slt-jax analyze` command)
  viewer         `write_viewer`: a split -> one interactive, self-contained HTML page (`slt-jax view`)

Importing this package imports nothing heavy, so the CLI can register its command cheaply.
"""
