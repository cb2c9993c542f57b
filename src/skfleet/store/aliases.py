"""Aliases: a name such as ``champion`` for one version of a model, moved in one write.

An alias is one small file next to the versions, ``NAME/@ALIAS`` (``{"version": 3, "set_at":
...}``), written with :func:`~skfleet.util.atomic.atomic_write`: a rename on local disk, a single
PUT on an object store. A reader sees the old version or the new one, never half a file; moving an
alias is that one write, and aliases of one model do not share a file, so setting one never
rewrites another. ``@`` cannot start a model name or a version folder, so an alias file is
neither. ``NAME@ALIAS`` resolves wherever a reference is taken (:meth:`ModelStore.resolve`).

A version an alias points at cannot be deleted: move the alias or delete it first, so that
``NAME@champion`` never points at nothing.

>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> from skfleet.store import ModelStore
>>> store = ModelStore("memory://doc-aliases/models")
>>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), [0.0, 1.0])
>>> _ = store.save("line", model), store.save("line", model)
>>> store.set_alias("line@1", "champion")
ModelRef(name='line', version=1, uri='memory://doc-aliases/models/line/1')
>>> store.resolve("line@champion").version, store.aliases("line")
(1, {'champion': 1})
>>> store.set_alias("line@2", "champion").version, store.load("line@champion").ref.version
(2, 2)
>>> store.resolve("line@staging")
Traceback (most recent call last):
...
skfleet.errors.ModelNotFoundError: model 'line' has no alias 'staging' in store memory://doc-aliases/models (aliases: champion); set one with: skfleet models alias line@VERSION staging
>>> store.delete_alias("line", "champion"), store.aliases("line")
(2, {})
"""

from __future__ import annotations

import datetime as dt
import json

from skfleet.errors import ModelNotFoundError, SkfleetError, UsageError
from skfleet.store.refs import ModelRef, passes, validate_alias, validate_name
from skfleet.util.atomic import atomic_write

#: An alias file's name is this prefix and the alias.
ALIAS_PREFIX = "@"


class AliasStore:
    """Reading, setting and deleting aliases; needs the store's ``fs``, paths, ``_reading``,
    ``_writing`` and ``resolve``."""

    def _alias_path(self, name: str, alias: str) -> str:
        return self._path(name, ALIAS_PREFIX + alias)

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of ``name`` and the version it points at, by alias ({} if none)."""
        validate_name(name)
        return self._aliases_among(name, self._find(self._path(name)))

    def _aliases_among(self, name: str, found: list[str]) -> dict[str, int]:
        """The aliases of ``name`` whose files are among ``found`` (a listing of the store)."""
        prefix = self._path(name).rstrip("/") + "/" + ALIAS_PREFIX
        out = {}
        for path in sorted(found):
            alias = path[len(prefix) :] if path.startswith(prefix) else ""
            if alias and "/" not in alias and passes(validate_alias, alias):
                out[alias] = self._alias_target(name, alias)
        return out

    def _alias_target(self, name: str, alias: str) -> int:
        """The version the alias file records; ModelNotFoundError when there is no such file."""
        with self._reading():
            try:
                data = self.fs.cat_file(self._alias_path(name, alias))
            except FileNotFoundError:
                known = ", ".join(self.aliases(name)) or "none"
                raise ModelNotFoundError(
                    f"model {name!r} has no alias {alias!r} in store {self.display} (aliases: "
                    f"{known}); set one with: skfleet models alias {name}@VERSION {alias}"
                ) from None
        try:
            version = json.loads(data)["version"]
        except (ValueError, KeyError, TypeError):
            version = None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SkfleetError(
                f"alias {alias!r} of model {name!r} in store {self.display} is damaged: "
                f"set it again with: skfleet models alias {name}@VERSION {alias}"
            )
        return version

    def alias_version(self, name: str, alias: str, versions: list[int] | None = None) -> int:
        """The version ``NAME@ALIAS`` means; it must still be stored (``versions``, if known)."""
        validate_alias(alias)
        version = self._alias_target(name, alias)
        versions = self.versions(name) if versions is None else versions
        if version not in versions:
            raise ModelNotFoundError(
                f"alias {alias!r} of model {name!r} points at version {version}, which is not in "
                f"store {self.display} (available versions: {', '.join(map(str, versions))}); "
                f"move it with: skfleet models alias {name}@VERSION {alias}"
            )
        return version

    def set_alias(self, ref: str | ModelRef, alias: str) -> ModelRef:
        """Point ``alias`` at the version ``ref`` names (``NAME@3``, ``NAME``, ``NAME@other``),
        in one atomic write; returns that version."""
        validate_alias(alias)
        target = self.resolve(ref)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body = json.dumps({"version": target.version, "set_at": stamp}) + "\n"
        with self._writing():
            atomic_write(self.fs, self._alias_path(target.name, alias), body.encode())
        return target

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``alias`` of ``name``; returns the version it pointed at."""
        validate_name(name)
        validate_alias(alias)
        version = self._alias_target(name, alias)
        with self._writing():
            self.fs.rm_file(self._alias_path(name, alias))
        return version

    def check_no_alias(self, ref: ModelRef) -> None:
        """Refuse to delete a version an alias points at, naming the alias and the way out."""
        held = [
            alias for alias, version in self.aliases(ref.name).items() if version == ref.version
        ]
        if held:
            raise UsageError(
                f"model {ref} is what alias {held[0]!r} points at: move the alias "
                f"(skfleet models alias {ref.name}@VERSION {held[0]}) or delete it "
                f"(skfleet models alias --delete {ref.name} {held[0]}) first"
            )
