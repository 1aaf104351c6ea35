"""``mccompile import``: a peer's config (Axolotl, LLaMA-Factory) into a mccompile config.

Pure data work: the peer file is read with mccompile's positioned loader, so every peer key
keeps its ``line:col`` for the warnings; the result is YAML text with a comment beside each
setting naming the peer key it came from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mccompile.diagnostics import Diagnostics, Position
from mccompile.frontend.loader import load
from mccompile.importers.common import Peer, emit

PEERS = {"axolotl": "Axolotl", "llama-factory": "LLaMA-Factory"}
# the key that names the model, which tells one peer's file from the other's
MODEL_KEY = {"axolotl": "base_model", "llama-factory": "model_name_or_path"}


def import_peer(peer: str, path: str | Path, diags: Diagnostics) -> str | None:
    """The mccompile config for the peer config at ``path``, or None when it has errors."""
    from mccompile.importers import axolotl, llama_factory

    doc = load(path, diags)
    if doc is None:
        diags.items[:] = [
            dataclasses.replace(
                d, message=f"the {PEERS[peer]} config must be a mapping of settings"
            )
            if d.code == "not-a-mapping"
            else d
            for d in diags.items
        ]
        return None
    other = next(p for p in PEERS if p != peer)
    if MODEL_KEY[other] in doc.data and MODEL_KEY[peer] not in doc.data:
        diags.error(
            "import-wrong-peer",
            f"this looks like {'an' if other == 'axolotl' else 'a'} {PEERS[other]} config"
            f" ('{MODEL_KEY[other]}', no '{MODEL_KEY[peer]}')",
            (MODEL_KEY[other],),
            doc.kpos((MODEL_KEY[other],)) or Position(1, 1),
            suggestion=f"mccompile import {other} {path}",
        )
        return None
    state = Peer(PEERS[peer], Path(path), doc, diags)
    module = axolotl if peer == "axolotl" else llama_factory
    out = module.import_config(state)
    if diags.has_errors:
        return None
    try:
        return emit(out)
    except ValueError as exc:  # a value YAML cannot carry back as itself (NaN, ...)
        diags.error("import-value", str(exc), (), Position(1, 1))
        return None
