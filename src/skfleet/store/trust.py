"""Which skops artifacts load without ``trust``: every name is judged by what it resolves to.

A skops file names the objects it is built from as ``module`` + ``name`` pairs and says which
loader (skops node type) rebuilds each one. The name proves nothing: trusted packages re-export
other objects under their own names (``sklearn.utils.discovery.import_module`` *is*
``importlib.import_module``). So for each name we import its module (only inside
:data:`TRUSTED_PACKAGES`), look the attribute up, and judge the object it resolves to together
with what its loader will do with it:

- ``ObjectNode`` rebuilds a class with ``__new__`` + state: scikit-learn and skfleet estimators and
  transformers, and a short list of data classes (:mod:`skfleet.store.trust_lists`);
- ``ConstructorFromReduceNode`` calls the class with arguments from the file: only classes whose
  constructor is harmless (``frozenset``, ``range``, ``numpy.dtype``);
- skops' fixed-type loaders (arrays, dtypes, sparse matrices, trees, losses, random states,
  containers) take only the type they are written for;
- references (``FunctionNode``, ``TypeNode``) take allowed classes and an explicit list of
  functions (numpy/scipy ufuncs and a few pure numeric functions): a model may call them at
  predict time with arguments from the file, so each must be harmless whatever it is given;
- ``PartialNode``, ``OperatorFuncNode`` and ``MethodNode`` are always refused: they build
  ``functools.partial``, ``operator.*getter`` and ``getattr(obj, name)``, the glue of load-time
  exploits, and no model skfleet stores needs them.

Any other loader (an older skops format, a node type a newer skops adds) is refused until it has
been reviewed here. The checks run on skops' node tree, which is built without importing or calling
anything the file names; :func:`load_checked` constructs that same tree only once every node in
it has passed.

>>> import numpy as np
>>> import skops.io
>>> audit(skops.io.dumps({"levels": np.array([1, 2])}))
[]
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skfleet.store.skops_io import deferred_defaults, skops_io

skops_io()  # before any skops import below: see skfleet.store.skops_io

from skops.io import _audit, _general, _numpy, _scipy, _sklearn  # noqa: E402
from skops.io._utils import read_schema  # noqa: E402
from skops.io.old import _numpy_v1  # noqa: E402

from skfleet.store import trust_lists as lists  # noqa: E402
from skfleet.store.trust_names import (  # noqa: E402
    TRUSTED_PACKAGES,
    Refused,
    describe,
    resolve,
)

_TRUST_HINT = "(pass --trust / trust=True only for files you wrote)"


class ArtifactReadError(Exception):
    """The bytes are not a skops file whose node tree can be built."""


@dataclass(frozen=True)
class Refusal:
    """One name in the file that may not be loaded without trust, and why."""

    #: The name as the file gives it (``module.name``).
    name: str
    #: What it is and why it is refused, e.g. ``"which is importlib.import_module: not allowed"``.
    detail: str

    def message(self) -> str:
        """One line for the user: the offending name, what it really is, and the way out."""
        return f"model artifact refers to {self.name!r}, {self.detail} {_TRUST_HINT}"


# --- what each loader may be given -------------------------------------------------------------


def _ref(obj: Any) -> bool:
    return lists.is_allowed_class(obj) or lists.is_allowed_function(obj)


def _set_of(*objects: Any) -> Callable[[Any], bool]:
    return lambda obj: any(obj is allowed for allowed in objects)


#: skops node class -> (what its name must resolve to, what that is called in a refusal).
#: Only these loaders are accepted without trust; each was read in skops' source for what its
#: construction calls (see the module docstring).
_RULES: dict[type, tuple[Callable[[Any], bool], str]] = {
    _general.ObjectNode: (lists.is_state_class, "not a class a model may hold"),
    _general.ConstructorFromReduceNode: (
        lists.is_constructible,
        "not allowed to be called with arguments from the file",
    ),
    _general.FunctionNode: (_ref, "not an allowed class or function"),
    _general.TypeNode: (_ref, "not an allowed class or function"),
    _general.DictNode: (lists.is_dict_class, "not a dict class"),
    _general.DefaultDictNode: (lists.is_defaultdict_class, "not collections.defaultdict"),
    _general.ListNode: (_set_of(list), "not builtins.list"),
    _general.SetNode: (_set_of(set), "not builtins.set"),
    _general.TupleNode: (lists.is_tuple_class, "not a tuple class"),
    _general.SliceNode: (_set_of(slice), "not builtins.slice"),
    _general.BytesNode: (_set_of(bytes), "not builtins.bytes"),
    _general.BytearrayNode: (_set_of(bytearray), "not builtins.bytearray"),
    _numpy.NdArrayNode: (lists.is_array_class, "not a numpy array or scalar type"),
    _numpy.MaskedArrayNode: (lists.is_masked_array_class, "not numpy.ma.MaskedArray"),
    _numpy.DTypeNode: (lists.is_dtype_class, "not numpy.dtype"),
    _numpy.RandomStateNode: (lists.is_random_state_class, "not numpy.random.RandomState"),
    _numpy.RandomGeneratorNode: (lists.is_generator_class, "not numpy.random.Generator"),
    # The same node for files of skops protocol 1, with the same bit generator check.
    _numpy_v1.RandomGeneratorNode: (lists.is_generator_class, "not numpy.random.Generator"),
    _scipy.SparseMatrixNode: (lists.is_sparse_class, "not a scipy.sparse matrix or array"),
    _sklearn.TreeNode: (lists.is_tree_class, "not sklearn.tree._tree.Tree"),
    _sklearn.LossNode: (lists.is_loss_class, "not a loss class skops rebuilds"),
}

#: Loaders that never look their name up: nothing to judge (their children still are).
_NAMELESS = (_general.JsonNode, _audit.CachedNode)

#: Loaders refused whatever they name: what they build, for the message.
_ALWAYS_REFUSED: dict[type, str] = {
    _general.PartialNode: "which is functools.partial: not allowed",
    _general.OperatorFuncNode: "which is operator.{name}: not allowed",
    _general.MethodNode: "a method looked up by name at load: not allowed",
}


def _full_name(node: Any) -> str:
    return f"{node.module_name}.{node.class_name}"


def _judge_name(node: Any, allowed: Callable[[Any], bool], reason: str) -> Refusal | None:
    try:
        obj = resolve(node.module_name, node.class_name)
    except Refused as refused:
        return Refusal(_full_name(node), refused.detail)
    except TypeError:  # an unhashable "name" (a list, a dict) in a hand-made file
        return Refusal(str(node.class_name), "which is not a name: not allowed")
    if allowed(obj):
        return None
    return Refusal(_full_name(node), f"which is {describe(obj)}: {reason}")


def _judge_dict_keys(node: Any) -> Refusal | None:
    """skops calls each of a dict's key types on its key: only plain scalar types may be there."""
    key_types = node.key_types
    if type(key_types) is not _general.ListNode:
        return Refusal(_full_name(node), "whose key types are not a plain list: not allowed")
    for item in key_types.content:
        if type(item) is not _general.TypeNode:
            # Say what the item is if it is refused anywhere; else that it is no type.
            return judge(item) or Refusal(
                _full_name(item), "which is not a type: not allowed as a dict key type"
            )
        refusal = _judge_name(item, lists.is_key_type, "not allowed as a dict key type")
        if refusal is not None:
            return refusal
    return None


def _bit_generator_name(node: Any) -> Any:
    """The bit generator name in a Generator node's state, as skops will read it when it
    constructs the node (``state["bit_generator"]``), or None if it is not a plain string."""
    state = getattr(node, "bit_generator_state", None)
    item = state.content.get("bit_generator") if type(state) is _general.DictNode else None
    if type(item) is not _general.JsonNode:
        return None
    try:
        name = json.loads(item.content)
    except (TypeError, ValueError):
        return None
    return name if isinstance(name, str) else None


def _judge_bit_generator(node: Any) -> Refusal | None:
    """A Generator's bit generator is named inside its state and called: it must be a real one."""
    name = _bit_generator_name(node)
    shown = f"numpy.random.{name}"
    try:
        obj = resolve("numpy.random", name)
    except (Refused, TypeError):
        return Refusal(shown, "which is not a numpy bit generator: not allowed")
    if lists.is_bit_generator(obj):
        return None
    return Refusal(shown, f"which is {describe(obj)}: not a numpy bit generator")


def judge(node: Any) -> Refusal | None:
    """Why skops may not construct ``node`` without trust, or None if it may."""
    kind = type(node)
    if kind in _NAMELESS:
        return None
    if kind in _ALWAYS_REFUSED:
        if kind is _general.MethodNode:
            name = f"{_full_name(node.obj)}.{node.func}"
        else:
            name = _full_name(node)
        return Refusal(name, _ALWAYS_REFUSED[kind].format(name=node.class_name))
    if kind not in _RULES:
        fmt = " of an older skops file format" if ".old." in kind.__module__ else ""
        return Refusal(
            _full_name(node),
            f"which skops would load with its {kind.__name__} loader{fmt}: not a loader "
            "skfleet allows",
        )
    refusal = _judge_name(node, *_RULES[kind])
    if refusal is None and kind is _general.DictNode:
        refusal = _judge_dict_keys(node)
    if refusal is None and kind in (_numpy.RandomGeneratorNode, _numpy_v1.RandomGeneratorNode):
        refusal = _judge_bit_generator(node)
    return refusal


# --- the tree ------------------------------------------------------------------------------------


@contextmanager
def _opened_tree(data: bytes) -> Iterator[Any]:
    """skops' node tree of ``data``, with its zip still open (as while skops loads a file)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        schema, context = read_schema(archive)
        with deferred_defaults():
            tree = _audit.get_tree(schema, context, trusted=None)
    except Exception as exc:  # BadZipFile, KeyError, ValueError, TypeError, RecursionError, ...
        raise ArtifactReadError(f"{type(exc).__name__}: {exc}") from exc
    with archive:
        yield tree


def node_tree(data: bytes) -> Any:
    """skops' node tree of ``data``: built from ``schema.json``, nothing in it constructed.

    Building it imports nothing the file names (skops defers every import to ``construct``), so
    it is safe on hostile input; malformed input raises :class:`ArtifactReadError`.
    """
    with _opened_tree(data) as tree:
        return tree


#: Children that are data, not nodes: zip members (``BytesIO``), a slice's bounds, the names an
#: old-format node keeps.
_PLAIN_CHILDREN = (str, int, float, bool, io.BytesIO)


def walk(root: Any) -> Iterator[Any]:
    """Every node of the tree once, depth first in file order (so the first refusal is the first
    offending name in the file). A child of a kind skops does not document is an error."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        children: list[Any] = []
        if isinstance(node, _audit.CachedNode):
            children.append(node.cached)
        for child in node.children.values():
            if isinstance(child, _audit.Node):
                children.append(child)
            elif isinstance(child, (list, dict)):
                values = child.values() if isinstance(child, dict) else child
                children.extend(v for v in values if not isinstance(v, _PLAIN_CHILDREN))
            elif child is not None and not isinstance(child, _PLAIN_CHILDREN):
                raise ArtifactReadError(f"unexpected {type(child).__name__} in the node tree")
        for child in children:
            if not isinstance(child, _audit.Node):
                raise ArtifactReadError(f"unexpected {type(child).__name__} in the node tree")
        stack.extend(reversed(children))


def audit(data: bytes) -> list[Refusal]:
    """Every refusal for the skops file ``data``, first offending name first; [] means it loads
    without trust. Malformed input raises :class:`ArtifactReadError`."""
    refusals: list[Refusal] = []
    for node in walk(node_tree(data)):
        refusal = judge(node)
        if refusal is not None and refusal not in refusals:
            refusals.append(refusal)
    return refusals


def first_refusal(data: bytes) -> Refusal | None:
    """The first refusal for ``data`` (what :func:`load_checked` raises), or None."""
    return _first_refusal(node_tree(data))


def _first_refusal(tree: Any) -> Refusal | None:
    for node in walk(tree):
        refusal = judge(node)
        if refusal is not None:
            return refusal
    return None


class RefusedArtifact(Exception):
    """Raised by :func:`load_checked`; ``refusal`` says which name and why."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message())
        self.refusal = refusal


def load_checked(data: bytes) -> Any:
    """The object in the skops file ``data``, if every node passes :func:`judge`.

    The tree is built once, judged, and constructed only then, the way :func:`skops.io.loads`
    builds, audits and constructs it (skops' own audit is a subset of this one). Raises
    :class:`RefusedArtifact` for the first offending name, :class:`ArtifactReadError` for
    malformed input; whatever constructing raises propagates.
    """
    with _opened_tree(data) as tree:
        refusal = _first_refusal(tree)
        if refusal is not None:
            raise RefusedArtifact(refusal)
        return tree.construct()


__all__ = [
    "TRUSTED_PACKAGES",
    "ArtifactReadError",
    "Refusal",
    "audit",
    "describe",
    "RefusedArtifact",
    "first_refusal",
    "judge",
    "load_checked",
    "resolve",
]
