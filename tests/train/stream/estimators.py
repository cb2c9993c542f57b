"""Estimators for the streaming tests (importable by worker processes)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from sklearn.linear_model import SGDClassifier


class RejectsLargeValues(SGDClassifier):
    """An SGDClassifier whose ``partial_fit`` refuses a batch holding a feature above ``limit``,
    as scikit-learn refuses bad input: with a ValueError. Each refusal leaves a file in
    ``attempts`` (when set), so a test can count how often a batch was tried, across processes."""

    def __init__(self, limit: float = 4.0, attempts: str = "", loss="log_loss", random_state=None):
        super().__init__(loss=loss, random_state=random_state)
        self.limit = limit
        self.attempts = attempts

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        if dense.size and float(np.abs(dense).max()) > self.limit:
            if self.attempts:
                Path(self.attempts, f"{os.getpid()}-{uuid.uuid4().hex}").touch()
            raise ValueError(f"Input X contains a value above {self.limit}\nsecond line")
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)
