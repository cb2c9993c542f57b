"""Checkpoints of a streamed training run, kept in the model store next to the models.

A checkpoint is one skops object at ``<store>/_checkpoints/<name>/checkpoint.skops`` holding the
estimator, the encoder and the loop position (epoch, step, metrics so far). It is written whole or
not at all: on local disk through a temporary file and an atomic rename, on object stores with one
PUT (an object appears with all its bytes or not at all). ``_checkpoints`` starts with ``_``, which
no model name may, so checkpoints never show up as models.

It is read back with the same trusted-type check as a stored model (skops, no pickle).

>>> cp = CheckpointStore("memory://doc-checkpoint/models", "flights")
>>> cp.load() is None
True
>>> cp.save({"position": {"epoch": 0, "step": 3}})
>>> cp.load()["position"]
{'epoch': 0, 'step': 3}
>>> cp.clear(); cp.load() is None
True
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from skfleet.errors import SkfleetError
from skfleet.store import ModelStore, dump_artifact, load_artifact, validate_name
from skfleet.util.atomic import atomic_write
from skfleet.util.redact import redact_text

CHECKPOINT_DIR = "_checkpoints"
CHECKPOINT_FILE = "checkpoint.skops"
#: Bumped when the checkpoint layout changes; an older checkpoint is then refused, not misread.
CHECKPOINT_FORMAT = 1


class CheckpointStore:
    """Save, load and clear the one checkpoint of the run named ``name`` in a model store."""

    def __init__(self, store: str | ModelStore | None, name: str):
        self.store = store if isinstance(store, ModelStore) else ModelStore(store)
        self.name = validate_name(name)
        root = self.store.root.rstrip("/")
        self.folder = f"{root}/{CHECKPOINT_DIR}/{name}"
        self.path = f"{self.folder}/{CHECKPOINT_FILE}"

    def __repr__(self) -> str:
        return f"CheckpointStore({self.store.display!r}, {self.name!r})"

    def save(self, state: dict[str, Any]) -> None:
        """Replace the checkpoint with ``state`` atomically."""
        data = dump_artifact({"format": CHECKPOINT_FORMAT, **state})
        fs = self.store.fs
        try:
            if self.store.local:
                os.makedirs(self.folder, exist_ok=True)
            atomic_write(fs, self.path, data)
        except OSError as exc:
            raise SkfleetError(
                f"cannot write checkpoint of {self.name!r} to {self.store.display}: "
                f"{redact_text(exc.strerror or str(exc))}"
            ) from exc

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no checkpoint."""
        fs = self.store.fs
        fs.invalidate_cache()
        try:
            data = fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SkfleetError(
                f"cannot read checkpoint of {self.name!r} from {self.store.display}: {exc}"
            ) from exc
        state = load_artifact(data)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise SkfleetError(
                f"checkpoint of {self.name!r} in {self.store.display} was written by another "
                "skfleet version; run without --resume to start over"
            )
        return state

    def clear(self) -> None:
        """Remove the checkpoint (after the final model is stored)."""
        fs = self.store.fs
        with contextlib.suppress(FileNotFoundError):
            fs.rm(self.folder, recursive=True)
        fs.invalidate_cache()
