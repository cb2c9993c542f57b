"""Synthetic model outputs shared by the report tests."""

import numpy as np


def classifier_output(n, classes, seed, strength=1.5):
    """Labels and softmax probabilities with some signal, as a fitted classifier would give."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    y_idx = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + strength * np.eye(k)[y_idx]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(classes, dtype=object)
    return labels[y_idx], labels[proba.argmax(axis=1)], proba
