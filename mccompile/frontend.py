"""The front end: load, validate, resolve and check a config into the IR."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mccompile import ir
from mccompile.checks import Checker
from mccompile.errors import ConfigError, Diagnostics
from mccompile.loader import load
from mccompile.resolve import Resolver
from mccompile.validate import check_schema, normalize


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
    checker = Checker(doc, diags)
    for wf in workflows:
        for job in wf.jobs:
            origin = resolver.origins.get((wf.id, job.id), {})
            base = origin.get("__component__", ())

            def where(key: str, origin: dict = origin, base: tuple = base) -> tuple:  # type: ignore[type-arg]
                return origin.get(key, base + (key,) if base else ())

            if job.kind == "train":
                checker.trainer(job, where)
            else:
                checker.dataset_job(job, where)
    if diags.has_errors:
        raise ConfigError(diags)
    config = ir.Config(
        file=Path(path).name,
        sha256=hashlib.sha256(raw).hexdigest(),
        workflows=tuple(workflows),
    )
    return config, diags
