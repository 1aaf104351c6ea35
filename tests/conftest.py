"""Shared fixtures. Tests never reach a model or dataset hub."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
GUIDE = ROOT / "tests" / "guide"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _own_compiler_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The suite's builds share one cache of their own, never the developer's.

    Workers of one run share it (their base folders have one parent), so the
    templates and black are paid for once per run, and nothing another tool
    or an older checkout left in ``~/.cache/mccompile`` decides a result.
    """
    base = tmp_path_factory.getbasetemp()
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ["MCCOMPILE_CACHE_DIR"] = str(run / "mccompile-cache")


def _tiny_model_module():
    spec = importlib.util.spec_from_file_location(
        "make_tiny_model", ROOT / "examples" / "make_tiny_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with a byte-level BPE tokenizer and a pad token, built offline."""
    path = tmp_path_factory.mktemp("models") / "tiny"
    _tiny_model_module().make_tiny_model(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, with a chat template and without a pad token."""
    path = tmp_path_factory.mktemp("models") / "tiny-chat"
    _tiny_model_module().make_tiny_model(str(path), chat_template=True, pad_token=False)
    return path


def python() -> str:
    return sys.executable
