"""Sphinx configuration of mef3lab's site: the user guide (MyST Markdown) and the API reference.

The guide is the README (included by ``index.md``) and every ``docs/*.md``; the reference is
autodoc over the installed package, read with numpydoc. Nothing is fetched from the network
while building. Build with ``make docs`` (into ``docs/_build/html``).
"""

import re
from typing import Protocol

from sphinx.util.inspect import signature, stringify_signature
from traitlets import HasDescriptors

import mef3lab

project = "mef3lab"
author = "the mef3lab authors"
copyright = "the mef3lab authors, Apache-2.0"
version = release = mef3lab.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "numpydoc",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

# MyST: GitHub-style anchors for the README's own links (#benchmarks), and definition lists
# (a term, then ": its definition").
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

# The reference: members in source order, signatures with their type hints; numpydoc renders
# the Parameters/Returns/Raises sections. A class's members are documented by autodoc
# (:members:), not listed a second time by numpydoc.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
numpydoc_show_class_members = False
# numpydoc loads autosummary, which would look for .rst stubs to generate: there are none.
autosummary_generate = False
# In docstrings a name in single backticks (`open_recording`) links to its entry when it has
# one (numpydoc's convention); unresolved names stay plain text.
default_role = "py:obj"

html_theme = "pydata_sphinx_theme"
html_title = f"mef3lab {release}"
html_theme_options = {
    "header_links_before_dropdown": 4,
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}


# The README's relative links start at the repository root (docs/scaling.md,
# notebooks/01-quickstart.ipynb); index.md, which includes it, sits in docs/.
_RELATIVE_LINK = re.compile(r"\]\((?!#|/|[a-zA-Z][a-zA-Z0-9+.-]*:)")


def _links_from_the_root(app, relative_path, parent_docname, content):
    """Make the README's relative links relative to ``docs/`` as it is included there."""
    if relative_path.name == "README.md":
        content[0] = _RELATIVE_LINK.sub("](../", content[0])


def _class_signature(app, what, name, obj, options, signature_, return_annotation):
    """What a class's entry shows after its name, where autodoc would show ``(*args, **kwargs)``.

    A traitlets class (the scroller) shows its ``__init__``, not the pass-through ``__new__``
    of traitlets; a protocol (`RecordingSource`), which is never instantiated, shows nothing.
    """
    if what != "class" or not isinstance(obj, type):
        return None
    if issubclass(obj, HasDescriptors):
        init = signature(obj.__init__, bound_method=True)
        shown = stringify_signature(init, show_return_annotation=False, unqualified_typehints=True)
        return shown, None
    if Protocol in obj.__bases__:
        return "", None
    return None


def _public_api_link(app, env, node, contnode):
    """A public name written bare in a docstring (`open_recording`) links to its `mef3lab` entry.

    In a page of another module the name alone does not resolve; the public API documents it.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or target not in mef3lab.__all__:
        return None
    py = env.get_domain("py")
    public = f"mef3lab.{target}"
    return py.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


def setup(app):
    """Sphinx's hooks for this project: the README's links, class signatures, public names."""
    app.connect("include-read", _links_from_the_root)
    app.connect("autodoc-process-signature", _class_signature)
    app.connect("missing-reference", _public_api_link)
