"""The front end: load, validate, resolve and check a config into the IR."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from mccompile import ir
from mccompile.diagnostics import ConfigError, Diagnostics, Path_
from mccompile.frontend.checks import Checker
from mccompile.frontend.loader import load
from mccompile.frontend.resolve import Resolver
from mccompile.frontend.validate import check_schema, normalize


def _locator(origin: dict[str, Path_]) -> Callable[[str], Path_]:
    """Where a job's field was written: its job input, else its component."""
    base = origin.get("__component__", ())

    def where(key: str) -> Path_:
        return origin.get(key, (*base, key) if base else ())

    return where


def compile_config(path: str | Path, display: str | None = None) -> tuple[ir.Config, Diagnostics]:
    """Read ``path`` into the IR. Raises :class:`ConfigError` with every error found."""
    diags = Diagnostics(display or str(path))
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        diags.error("io", f"cannot read the config: {exc.strerror or exc}")
        raise ConfigError(diags) from None
    doc = load(path, diags)
    if doc is None:
        raise ConfigError(diags)
    normalize(doc, diags)
    check_schema(doc, diags)
    resolver = Resolver(doc, diags)
    workflows = resolver.resolve()
    checker = Checker(doc, diags, resolver.nested_names, base=Path(path).parent)
    for wf in workflows:

        def locate(job_id: str, wf_id: str = wf.id) -> Callable[[str], Path_]:
            return _locator(resolver.origins.get((wf_id, job_id), {}))

        for job in wf.jobs:
            if job.kind == "train":
                checker.trainer(job, locate(job.id))
            else:
                checker.dataset_job(job, locate(job.id))
        checker.streams(wf, locate)
    if diags.has_errors:
        raise ConfigError(diags)
    config = ir.Config(
        file=Path(path).name,
        sha256=hashlib.sha256(raw).hexdigest(),
        workflows=tuple(workflows),
        files=dict(sorted(checker.files.items())),
        root=str(Path(path).resolve().parent),
    )
    return config, diags
