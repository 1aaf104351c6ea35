"""Semantic checks of dataset jobs (loaders, operations, streams), on resolved jobs.

:class:`Reporter` holds what every check reports through; :class:`DatasetChecks` the
checks of the datasets components; the trainer's are in :mod:`mccompile.frontend.checks`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mccompile import ir
from mccompile.diagnostics import Diagnostics, Path_
from mccompile.frontend.loader import Document
from mccompile.frontend.local_files import missing, paths_in
from mccompile.tasks.base import Where

VALUE_OPERATORS = (
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not-in",
    "contains",
    "starts-with",
    "ends-with",
    "match",
)


class Reporter:
    """Diagnostics at the place the user wrote a value: the job's input when a job set it, the
    component otherwise."""

    def __init__(
        self,
        doc: Document,
        diags: Diagnostics,
        nested: dict[Path_, str] | None = None,
        base: Path | None = None,
    ) -> None:
        self.doc = doc
        self.base = base if base is not None else Path(doc.file).parent  # files are read from here
        self.diags = diags
        self.nested = nested or {}
        # chat template files read for the generator: as written in the config -> text
        self.files: dict[str, str] = {}

    def _name(self, key: str, path: Path_) -> str:
        """The key as the user wrote it (``lora.rank`` for ``lora_r``)."""
        return self.nested.get(path, key)

    def _error(self, code: str, message: str, path: Path_) -> None:
        self.diags.error(code, message, path, self.doc.kpos(path))

    def _warning(self, code: str, message: str, path: Path_) -> None:
        self.diags.warning(code, message, path, self.doc.kpos(path))

    def _missing(self, key: str, text: str, path: Path_, *, folder: bool = False) -> None:
        """A warning at a local path that names nothing here."""
        problem = missing(text, self.base, folder=folder)
        if problem:
            self.diags.warning("missing-data", f"{key}: {problem}", path, self.doc.pos(path))

    # for the task modules' checks
    error = _error
    warning = _warning


class DatasetChecks(Reporter):
    def dataset_job(self, job: ir.Job, where: Where) -> None:
        f = job.fields

        def val(key: str) -> Any:
            return ir.lit(f[key]) if key in f else None

        if job.kind == "load":
            if job.provider == "local":
                if "loader" not in f:
                    self._error(
                        "missing-key",
                        f"a local loader needs 'loader' (json, csv, parquet or text) in"
                        f" component '{job.component}'",
                        where("loader"),
                    )
                has_files = val("data_files") is not None or not isinstance(
                    f.get("data_files", ir.Lit(None)), ir.Lit
                )
                has_dir = val("data_dir") is not None or not isinstance(
                    f.get("data_dir", ir.Lit(None)), ir.Lit
                )
                if has_files == has_dir:
                    self._error(
                        "local-files",
                        f"a local loader needs exactly one of data_files and data_dir"
                        f" (component '{job.component}')",
                        where("data_files" if has_files else "loader"),
                    )
                for text, at in paths_in(val("data_files"), where("data_files")):
                    self._missing("data_files", text, at)
                if isinstance(val("data_dir"), str):
                    self._missing("data_dir", val("data_dir"), where("data_dir"), folder=True)
            if val("trust_remote_code") is True:
                self._error(
                    "unsupported",
                    "trust_remote_code: true has no effect: the datasets library (5.x) runs no"
                    " dataset loading scripts; load the data files instead",
                    where("trust_remote_code"),
                )
            if val("streaming") is True:
                if isinstance(val("fraction"), (int, float)) and val("fraction") < 1:
                    self._error(
                        "streaming",
                        "fraction needs the dataset's length, which a stream does not have;"
                        " filter or select the rows after loading instead",
                        where("fraction"),
                    )
                if "[" in str(val("split") or ""):
                    self._error(
                        "streaming",
                        "split slicing such as train[:10%] needs the dataset's length, which a"
                        " stream does not have",
                        where("split"),
                    )
            return
        method = job.method
        if method == "select":
            axis = val("axis")
            need, other = ("columns", "indices") if axis == "columns" else ("indices", "columns")
            if axis in ("columns", "rows"):
                if need not in f:
                    self._error(
                        "missing-key",
                        f"select with axis: {axis} needs '{need}'",
                        where("axis"),
                    )
                if other in f:
                    self._error(
                        "wrong-axis",
                        f"'{other}' does not apply to select with axis: {axis}",
                        where(other),
                    )
            self._need(job, "dataset", where)
        elif method == "map":
            self._need(job, "dataset", where)
            self._need(job, "template", where)
            template = val("template")
            if isinstance(template, str):
                problem = template_problem(template)
                if problem:
                    self._error("template", f"map template: {problem}", where("template"))
        elif method == "filter":
            self._need(job, "dataset", where)
            self._need(job, "condition", where)
            cond = val("condition")
            base = where("condition")
            for message, sub in condition_problems(cond):
                path = (*base, *sub)
                self.diags.error(
                    "condition", f"filter condition: {message}", path, self.doc.pos(path)
                )
        elif method == "concat":
            self._need(job, "datasets", where)
        elif method == "interleave":
            self._need(job, "datasets", where)
            self._probabilities(job, where)
        elif method == "deduplicate":
            self._need(job, "dataset", where)

    def _probabilities(self, job: ir.Job, where: Where) -> None:
        """An interleave's probabilities: one per dataset, summing to 1."""
        probs = ir.lit(job.fields.get("probabilities", ir.Lit(None)))
        if not isinstance(probs, list) or not all(
            isinstance(p, (int, float)) and not isinstance(p, bool) for p in probs
        ):
            return
        given = job.fields.get("datasets")
        count = (
            len(given.items)
            if isinstance(given, ir.Seq)
            else len(given.value)
            if isinstance(given, ir.Lit) and isinstance(given.value, list)
            else None
        )
        if count is not None and len(probs) != count:
            self._error(
                "probabilities",
                f"interleave has {count} datasets but {len(probs)} probabilities; give one per"
                " dataset",
                where("probabilities"),
            )
        elif abs(sum(probs) - 1) > 1e-6:
            self._error(
                "probabilities",
                f"interleave probabilities sum to {sum(probs):g}, not 1",
                where("probabilities"),
            )

    def streams(self, wf: ir.Workflow, locate: Callable[[str], Where]) -> None:
        """What a stream (a loader with streaming: true) cannot feed: its length is unknown."""
        streamed = streamed_jobs(wf)
        for job in wf.jobs:
            where = locate(job.id)
            fed = any(
                isinstance(r, ir.JobRef) and r.job in streamed
                for v in job.fields.values()
                for r in ir.refs(v)
            )
            if not fed:
                continue
            if job.method == "select" and ir.lit(job.fields.get("axis", ir.Lit(None))) == "rows":
                self._error(
                    "streaming",
                    f"select rows needs the dataset's length; job '{job.id}' reads a stream",
                    where("indices"),
                )
            if job.method == "deduplicate":
                self._error(
                    "streaming",
                    f"deduplicate needs the whole dataset (every row is compared with every"
                    f" other); job '{job.id}' reads a stream",
                    where("dataset"),
                )
            if job.kind != "train":
                continue
            max_steps = job.fields.get("max_steps", ir.Lit(None))
            if isinstance(max_steps, ir.Lit) and max_steps.value is None:
                self._error(
                    "streaming",
                    f"job '{job.id}' trains on a stream, whose length is unknown: set max_steps",
                    where("max_steps"),
                )
            for key in ("evals_per_epoch", "saves_per_epoch"):
                if key in job.explicit and ir.lit(job.fields[key]) is not None:
                    self._error(
                        "streaming",
                        f"{key} needs the number of rows in an epoch; job '{job.id}' trains on a"
                        f" stream, whose length is unknown: give {key.split('s_')[0]}_steps",
                        where(key),
                    )
            for key in ("eval_strategy", "save_strategy"):
                if ir.lit(job.fields.get(key, ir.Lit(None))) == "epoch":
                    self._error(
                        "streaming",
                        f"{key}: epoch needs epochs; job '{job.id}' trains on a stream, which"
                        " has none: use steps",
                        where(key),
                    )
            if "validation_split" in job.explicit:
                self._error(
                    "streaming",
                    "validation_split cannot carve rows out of a stream; give an eval_dataset",
                    where("validation_split"),
                )
            labels = job.fields.get("labels", ir.Lit(None))
            classification = ir.lit(job.fields["task"]) == "classification"
            if classification and isinstance(labels, ir.Lit) and labels.value is None:
                self._error(
                    "streaming",
                    "a stream cannot be read ahead for its classes: give labels",
                    where("labels"),
                )

    def _need(self, job: ir.Job, key: str, where: Where) -> None:
        if key not in job.fields:
            self._error(
                "missing-key",
                f"{job.method} needs '{key}' (in component '{job.component}' or the job's input)",
                where(key),
            )


def streamed_jobs(wf: ir.Workflow) -> set[str]:
    """The jobs whose result is a stream: streaming loaders and what reads them."""
    streamed: set[str] = set()
    for job in wf.jobs:
        loads_stream = job.kind == "load" and ir.lit(job.fields.get("streaming", ir.Lit(False)))
        reads_stream = job.kind == "op" and any(
            isinstance(r, ir.JobRef) and r.job in streamed
            for v in job.fields.values()
            for r in ir.refs(v)
        )
        if loads_stream is True or reads_stream:
            streamed.add(job.id)
    return streamed


def template_problem(template: str) -> str | None:
    """Why a ``{column}`` template is malformed, or None."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{exc} (write {{{{ and }}}} for literal braces)"
    for _text, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "":
            return "an empty placeholder {} names no column"
        if spec or conversion or not re.fullmatch(r"[^.\[\]{}!:]+", name):
            return (
                f"placeholder '{{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}' is not a plain {{column}}"
            )
    return None


def condition_problems(cond: Any, path: Path_ = ()) -> list[tuple[str, Path_]]:
    """Problems of a filter condition the schema does not see, with where they are."""
    out: list[tuple[str, Path_]] = []
    if not isinstance(cond, dict):
        return out
    for key in ("all", "any"):
        if key in cond:
            items = cond[key]
            for i, sub in enumerate(items if isinstance(items, list) else []):
                out.extend(condition_problems(sub, (*path, key, i)))
            return out
    if "not" in cond:
        return condition_problems(cond["not"], (*path, "not"))
    op = cond.get("operator")
    label = f"{cond.get('column')} {op}"
    value = cond.get("value")
    if op in VALUE_OPERATORS and "value" not in cond:
        out.append((f"'{label}' needs a 'value'", path))
    if op in ("empty", "not-empty") and "value" in cond:
        out.append((f"'{label}' takes no 'value'", (*path, "value")))
    if op in ("in", "not-in") and "value" in cond and not isinstance(value, list):
        out.append((f"'{label}' needs a list as 'value'", (*path, "value")))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if op in ("gt", "gte", "lt", "lte") and cond.get("length") and not numeric:
        out.append((f"'{label}' with length: true compares with a number", (*path, "value")))
    if op == "match" and isinstance(value, str):
        try:
            re.compile(value)
        except re.error as exc:
            out.append((f"'{label}': invalid regular expression ({exc})", (*path, "value")))
    if op == "match" and "value" in cond and not isinstance(value, str):
        out.append((f"'{label}' needs a regular expression (text) as 'value'", (*path, "value")))
    return out
