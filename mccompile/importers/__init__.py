"""``mccompile import``: a peer's config (Axolotl, LLaMA-Factory) into a mccompile config.

Pure data work: the peer file is read with mccompile's positioned loader, so every peer key
keeps its ``line:col`` for the warnings; the result is YAML text with a comment beside each
setting naming the peer key it came from.
"""

from __future__ import annotations

from pathlib import Path

from mccompile.errors import Diagnostics
from mccompile.importers.common import Peer, emit
from mccompile.loader import load

PEERS = {"axolotl": "Axolotl", "llama-factory": "LLaMA-Factory"}


def import_peer(peer: str, path: str | Path, diags: Diagnostics) -> str | None:
    """The mccompile config for the peer config at ``path``, or None when it has errors."""
    from mccompile.importers import axolotl, llama_factory

    doc = load(path, diags)
    if doc is None:
        return None
    state = Peer(PEERS[peer], Path(path), doc, diags)
    module = axolotl if peer == "axolotl" else llama_factory
    out = module.import_config(state)
    if diags.has_errors:
        return None
    return emit(out)
