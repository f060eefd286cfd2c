"""Third-party work moved from import time to first use, so a notebook kernel starts fast and small.

Every explorer app imports plotly; plotly imports nbformat, nbformat imports jsonschema, and
jsonschema's format checkers import ``rfc3987_syntax``, which builds its IRI grammar with lark
the moment it is imported: measured here 2-3 s and 22 MB of memory per kernel, paid by every
notebook before its first figure, for the ``iri`` format check that no notebook ever runs
(jsonschema issue #1392; the package's maintained fork loads lazily for the same reason).

:func:`defer_iri_grammar` puts a stand-in module in its place. The stand-in imports the real
package the first time any of its names is used, so every check gives the same answer as before;
only the cost moves to the first IRI check (which, in a notebook kernel, never comes).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

GRAMMAR_PACKAGE = "rfc3987_syntax"


def defer_iri_grammar() -> bool:
    """Replace ``rfc3987_syntax`` by a stand-in that loads it on first use; True if done (False
    when it is already imported or not installed)."""
    if GRAMMAR_PACKAGE in sys.modules or importlib.util.find_spec(GRAMMAR_PACKAGE) is None:
        return False
    stand_in = types.ModuleType(GRAMMAR_PACKAGE, "stand-in: the real package loads on first use")

    def load_real_package():
        if sys.modules.get(GRAMMAR_PACKAGE) is stand_in:
            del sys.modules[GRAMMAR_PACKAGE]
        real = importlib.import_module(GRAMMAR_PACKAGE)
        stand_in.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
        return real

    def is_valid_syntax(*args, **kwargs):  # the one name jsonschema imports
        return load_real_package().is_valid_syntax(*args, **kwargs)

    def __getattr__(name):  # any other public name (PEP 562)
        if name.startswith("__"):  # introspection of sys.modules (torch does it) loads nothing
            raise AttributeError(f"module {GRAMMAR_PACKAGE!r} has no attribute {name!r}")
        return getattr(load_real_package(), name)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = __getattr__
    sys.modules[GRAMMAR_PACKAGE] = stand_in
    return True


NOTEBOOK_FORMAT_PACKAGE = "nbformat"
PLOTLY_RENDERERS = "plotly.io._renderers"


def defer_nbformat_for_plotly() -> bool:
    """Import plotly's renderer registry with a stand-in for nbformat; True if done (False when
    either is already imported, or plotly is not installed).

    plotly.io._renderers imports nbformat at import time only to check its version when a
    figure is shown through a notebook MIME renderer (``fig.show()``), which the apps' figure
    widgets never do. nbformat brings jsonschema, referencing and rpds: measured here about 160
    modules and 6 MB of private memory per kernel. The stand-in lives only in plotly's module:
    ``sys.modules`` is restored at once, so every other ``import nbformat`` gets the real package,
    and the stand-in imports it on its first attribute read (``nbformat.__version__`` in show)."""
    if (NOTEBOOK_FORMAT_PACKAGE in sys.modules or PLOTLY_RENDERERS in sys.modules
            or importlib.util.find_spec("plotly") is None):
        return False
    stand_in = _ForwardingModule(NOTEBOOK_FORMAT_PACKAGE)
    sys.modules[NOTEBOOK_FORMAT_PACKAGE] = stand_in
    try:
        importlib.import_module(PLOTLY_RENDERERS)
    finally:
        if sys.modules.get(NOTEBOOK_FORMAT_PACKAGE) is stand_in:
            del sys.modules[NOTEBOOK_FORMAT_PACKAGE]
    return True


class _ForwardingModule(types.ModuleType):
    """A module whose every attribute is read from the real module of the same name, imported
    on the first read (never from ``sys.modules``' stand-in: it is taken out first)."""

    def __getattr__(self, attribute: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attribute)


class DeferredModule:
    """What ``name = deferred_import("name", globals())`` binds: a stand-in for a module that is
    imported on the first attribute read (``torch.ones``, ``isinstance(x, torch.Tensor)``), which
    also rebinds the name in the importing module's namespace to the real module, so every later
    read is a plain global lookup again.

    Why: torch costs a kernel ~130 MB of private memory and 1-2 s at import. The frontier notebook's
    default view computes in NumPy and only reads the divergence registry's names; with torch
    imported where it is first *used*, that kernel never loads it, and no notebook pays for it
    before its first computation needs it."""

    __slots__ = ("_name", "_namespace", "_binding")

    def __init__(self, name: str, namespace: dict, binding: str) -> None:
        self._name, self._namespace, self._binding = name, namespace, binding

    def _load(self) -> types.ModuleType:
        module = importlib.import_module(self._name)
        if self._namespace.get(self._binding) is self:
            self._namespace[self._binding] = module
        return module

    def __getattr__(self, attribute: str):
        return getattr(self._load(), attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r} (imported on first use)>"


def deferred_import(name: str, namespace: dict, binding: str | None = None):
    """``import name`` for a module that is used only inside functions: the module itself when it
    is already imported, else a :class:`DeferredModule` bound as ``binding`` (default: the last
    part of ``name``) in ``namespace`` (the caller's ``globals()``)."""
    binding = binding or name.rpartition(".")[2]
    if is_imported(name):
        return sys.modules[name]
    return DeferredModule(name, namespace, binding)


def is_imported(name: str) -> bool:
    """Whether module ``name`` is imported *and done*: one that another thread is still
    importing (``explorer.warm``'s) is in ``sys.modules`` already, without its names yet."""
    module = sys.modules.get(name)
    return module is not None and not getattr(getattr(module, "__spec__", None),
                                              "_initializing", False)
