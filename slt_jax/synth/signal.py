"""Small time-series helpers: easing, Gaussian smoothing and smooth random drift."""

from __future__ import annotations

import numpy as np


def ease(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk progress 0 -> 1 over u in 0..1: how a hand accelerates and brakes."""
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u**2)


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooths x along axis 0 (edges held), with sigma in frames."""
    if sigma <= 0 or len(x) < 2:
        return x
    radius = int(3 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)])
    columns = padded.reshape(len(padded), -1).T
    return np.stack([np.convolve(c, kernel, mode="valid") for c in columns], -1).reshape(x.shape)


def drift(rng: np.random.Generator, frames: int, sigma: float, size: int = 1) -> np.ndarray:
    """Smooth random motion with unit standard deviation, (frames, size); sigma sets its pace."""
    radius = int(3 * sigma + 0.5)
    x = smooth(rng.standard_normal((frames + 2 * radius, size)), sigma)[radius:radius + frames]
    return x / np.sqrt(1 / (2 * np.sqrt(np.pi) * max(sigma, 0.5)))
