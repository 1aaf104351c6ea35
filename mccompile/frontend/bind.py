"""Binding: config values and their ``${...}`` expressions become IR values.

Inside a component, ``${input.x}`` is the job's input ``x``; inside a job, it
is the workflow's input ``x``, which becomes an option of the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mccompile import ir
from mccompile.diagnostics import Diagnostics, Path_
from mccompile.frontend import expressions as ex
from mccompile.frontend import schema as sch
from mccompile.frontend.loader import Document

DATASET_FIELDS = ("dataset", "eval_dataset", "datasets")


@dataclass
class InputSpec:
    """A workflow input as it is collected: type, default, where first used."""

    name: str
    type: str
    default: Any
    has_default: bool
    path: Path_
    help: str


@dataclass
class Scope:
    """What one workflow collects while its jobs are bound."""

    workflow: str
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    env: dict[str, ir.EnvRef] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Where a value is written.

    ``in_component``: a component field (else a job's input). ``bindings``: the
    job's input values for the component's ``${input.x}``; ``passthrough``:
    the job has no input, so ``${input.x}`` reaches the workflow's inputs.
    """

    scope: Scope
    in_component: bool
    bindings: dict[str, ir.Value] = field(default_factory=dict)
    passthrough: bool = True
    owner: str = ""


class Binder:
    def __init__(self, doc: Document, diags: Diagnostics) -> None:
        self.doc = doc
        self.diags = diags

    def error(self, code: str, message: str, path: Path_, suggestion: str | None = None) -> None:
        self.diags.error(code, message, path, self.doc.pos(path), suggestion)

    def value(self, raw: Any, path: Path_, ctx: Context, field_name: str | None) -> ir.Value:
        """Raw config data as a Value; ``field_name`` says what it feeds (for types)."""
        hint = type_hint(field_name)
        if isinstance(raw, str):
            return self._string(raw, path, ctx, field_name, hint)
        if isinstance(raw, list):
            items = [self.value(v, (*path, i), ctx, field_name) for i, v in enumerate(raw)]
            if all(isinstance(v, ir.Lit) for v in items):
                return ir.Lit([v.value for v in items if isinstance(v, ir.Lit)])
            return ir.Seq(tuple(items))
        if isinstance(raw, dict):
            for text, spath in strings(raw, path):
                if ex.has_expression(text):
                    self.error(
                        "unsupported",
                        "expressions inside a mapping are not supported; give the whole mapping"
                        " as one ${input.NAME as object}",
                        spath,
                    )
        return ir.Lit(raw)

    def _string(
        self, raw: str, path: Path_, ctx: Context, field_name: str | None, hint: str | None
    ) -> ir.Value:
        try:
            parsed = ex.parse(raw)
        except ex.ExprError as err:
            self.error("expression", str(err), path, err.suggestion)
            return ir.Lit(raw)
        if isinstance(parsed, str):
            return ir.Lit(parsed)
        if isinstance(parsed, ex.Expr):
            return self._expr(parsed, path, ctx, field_name, hint)
        parts: list[str | ir.InputRef | ir.EnvRef | ir.JobRef] = []
        for part in parsed.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            value = self._expr(part, path, ctx, field_name, "string")
            if isinstance(value, ir.Lit):
                parts.append(str(value.value))
            elif isinstance(value, ir.JobRef):
                self.error("type", f"{part.text} is a dataset and cannot be part of a text", path)
            elif isinstance(value, (ir.InputRef, ir.EnvRef)):
                parts.append(value)
            elif isinstance(value, ir.Interp):
                parts.extend(value.parts)
        if all(isinstance(p, str) for p in parts):
            return ir.Lit("".join(p for p in parts if isinstance(p, str)))
        return ir.Interp(tuple(parts))

    def _expr(
        self, e: ex.Expr, path: Path_, ctx: Context, field_name: str | None, hint: str | None
    ) -> ir.Value:
        if e.source == "env":
            assert e.name is not None
            if e.type not in (None, "string", "text"):
                self.error("type", f"{e.text}: environment values are text", path)
            ctx.scope.env.setdefault(e.name, ir.EnvRef(e.name, e.default))
            return ir.EnvRef(e.name, e.default)
        if e.source == "output":
            self.error("unsupported", f"{e.text} can only stand as a job's output", path)
            return ir.Lit(None)
        if e.source == "jobs":
            return self._job(e, path, ctx, field_name)
        if e.name is None:
            self.error("unsupported", f"{e.text}: name the input, as ${{input.NAME}}", path)
            return ir.Lit(None)
        if e.path:
            self.error(
                "unsupported",
                f"{e.text}: a path into an input is not supported; use ${{input.{e.name}}}",
                path,
            )
        if ctx.in_component and e.name in ctx.bindings:
            bound = ctx.bindings[e.name]
            if isinstance(bound, ir.InputRef) and e.default is not None:
                known = ctx.scope.inputs.get(bound.name)
                if known is not None and not known.has_default:
                    known.default = self._default(e, hint, path)
                    known.has_default = True
            return bound
        if ctx.in_component and not ctx.passthrough:
            if e.default is not None:
                return ir.Lit(self._default(e, hint, path))
            self.error(
                "missing-input",
                f"component '{ctx.owner}' uses {e.text}, but the job's input gives no"
                f" '{e.name}' and it has no default",
                path,
            )
            return ir.Lit(None)
        return self._workflow_input(e, path, ctx.scope, field_name, hint)

    def _job(self, e: ex.Expr, path: Path_, ctx: Context, field_name: str | None) -> ir.Value:
        if ctx.in_component:
            self.error(
                "unsupported",
                f"{e.text}: a component cannot refer to a job; pass it in the job's input",
                path,
            )
            return ir.Lit(None)
        if e.path:
            self.error(
                "unsupported",
                f"{e.text}: a job's output is a whole dataset; a path into it is not supported",
                path,
            )
        if field_name not in DATASET_FIELDS:
            self.error(
                "type", f"{e.text} is a dataset, but '{field_name}' does not take a dataset", path
            )
        assert e.name is not None
        return ir.JobRef(e.name)

    def _default(self, e: ex.Expr, hint: str | None, path: Path_) -> Any:
        assert e.default is not None
        try:
            return ex.convert(e.default, e.type or _convert_type(hint))
        except ex.ExprError as err:
            self.error("expression", f"{e.text}: {err}", path)
            return None

    def _workflow_input(
        self, e: ex.Expr, path: Path_, scope: Scope, field_name: str | None, hint: str | None
    ) -> ir.Value:
        assert e.name is not None
        type_ = e.type or ("dataset" if field_name in DATASET_FIELDS else hint) or "string"
        if type_ == "text":
            type_ = "string"
        default = self._default(e, hint, path) if e.default is not None else None
        known = scope.inputs.get(e.name)
        if known is None:
            scope.inputs[e.name] = InputSpec(
                e.name, type_, default, e.default is not None, path, _help(field_name, type_)
            )
            return ir.InputRef(e.name)
        if known.type != type_ and "dataset" not in (known.type, type_):
            first = self.doc.pos(known.path)
            self.error(
                "input-type",
                f"input '{e.name}' is used as {type_} here but as {known.type} at line"
                f" {first.line if first else '?'}",
                path,
            )
        if e.default is not None and not known.has_default:
            known.default = default
            known.has_default = True
        return ir.InputRef(e.name)


def _help(field_name: str | None, type_: str) -> str:
    """The option's help: what the field it feeds means, from the schema."""
    if type_ == "dataset":
        return (
            "a dataset: a .json/.jsonl/.csv/.parquet/.txt file, a save_to_disk folder,"
            " a local dataset folder or a hub id"
        )
    spec = _field_schema(field_name) or {}
    described = str(spec.get("description", "")).rstrip(".")
    if type_ in ("object", "json", "list"):
        described += " (as JSON)" if described else "JSON"
    return f"{field_name}: {described}" if described else f"sets {field_name}"


def _convert_type(hint: str | None) -> str | None:
    """How a default without ``as TYPE`` is read: as the field's type; text stays text."""
    return hint if hint in ("integer", "number", "boolean", "string") else None


def _field_schema(name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    for fields in (
        sch.trainer_fields(),
        *(sch.loader_fields(p) for p in sch.providers()),
        *(sch.operation_fields(m) for m in sch.methods()),
    ):
        if name in fields:
            found: dict[str, Any] = fields[name]
            return found
    return None


def type_hint(field_name: str | None) -> str | None:
    """The type an input takes when it feeds ``field_name`` and says no ``as TYPE``."""
    spec = _field_schema(field_name)
    if not spec:
        return None
    types = sch.field_types(spec) - {"null"}
    for t in ("integer", "number", "boolean"):
        if types == {t}:
            return t
    if types == {"integer", "number"}:
        return "number"
    if types == {"string"}:
        return "string"
    if "array" in types:
        return "list"
    if field_name == "condition":
        return "object"
    return None


def strings(value: Any, path: Path_) -> list[tuple[str, Path_]]:
    """Every string inside ``value``, with its path."""
    if isinstance(value, str):
        return [(value, path)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in strings(v, (*path, i))]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, (*path, k))]
    return []


def input_names(value: Any, path: Path_) -> set[str]:
    """The names of every ``${input.NAME}`` inside ``value``."""
    names: set[str] = set()
    for text, _ in strings(value, path):
        try:
            parsed = ex.parse(text)
        except ex.ExprError:
            continue
        exprs = [parsed] if isinstance(parsed, ex.Expr) else []
        if isinstance(parsed, ex.Interpolation):
            exprs = [p for p in parsed.parts if isinstance(p, ex.Expr)]
        names.update(e.name for e in exprs if e.source == "input" and e.name)
    return names
