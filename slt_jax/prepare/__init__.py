"""From released corpora and other keypoint formats to the converted layout (no jax)."""
