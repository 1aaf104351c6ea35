"""Resolving one job: its component, its method, its input, its fields with defaults."""

from __future__ import annotations

from typing import Any

from mccompile import ir, tasks
from mccompile.diagnostics import Diagnostics, Path_, did_you_mean
from mccompile.frontend import expressions as ex
from mccompile.frontend import schema as sch
from mccompile.frontend.bind import Binder, Context, Scope, input_names
from mccompile.frontend.loader import Document
from mccompile.tasks.fields import BNB4_FIELDS, LORA_FIELDS

META_KEYS = ("id", "type", "default", "title", "description")
LORA_NESTED = {
    "rank": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_modules": "lora_target_modules",
    "bias": "lora_bias",
}


def component_kind(comp: dict[str, Any]) -> str:
    if comp.get("type") == "model-trainer":
        return "train"
    if comp.get("provider") is not None:
        return "load"
    return "op"


def allowed_fields(comp: dict[str, Any], method: str | None) -> dict[str, Any]:
    """The fields a job of this component may set or override."""
    if comp.get("type") == "model-trainer":
        task = tasks.get(comp.get("task", tasks.DEFAULT)).NAME
        return {k: v for k, v in sch.trainer_fields(task).items() if k not in META_KEYS}
    provider = comp.get("provider")
    if isinstance(provider, str):
        return dict(sch.loader_fields(provider))
    return dict(sch.operation_fields(method or "")) if method else {}


class JobResolver:
    """The part of the resolver that turns one job (and its component) into an ``ir.Job``."""

    doc: Document
    diags: Diagnostics
    binder: Binder
    components: dict[str, tuple[int, dict[str, Any]]]
    invalid_components: set[str]
    components_misspelt: bool
    origins: dict[tuple[str, str], dict[str, Path_]]
    nested_names: dict[Path_, str]

    def error(
        self,
        code: str,
        message: str,
        path: Path_,
        key: bool = False,
        suggestion: str | None = None,
    ) -> None:
        pos = self.doc.kpos(path) if key else self.doc.pos(path)
        self.diags.error(code, message, path, pos, suggestion)

    def job(self, jpath: Path_, raw: dict[str, Any], scope: Scope) -> ir.Job | None:
        found = self._component_of(jpath, raw)
        if found is None:
            return None
        comp_id, cindex, comp = found
        cpath: Path_ = ("components", cindex)
        jid = raw.get("id", comp_id)
        if not isinstance(jid, str):
            return None
        output = raw.get("output")
        if output is not None and not (
            isinstance(output, str) and output.replace(" ", "") == "${output}"
        ):
            self.error(
                "unsupported",
                "a job's output can only be ${output} (the job's result) in mccompile",
                (*jpath, "output"),
            )
        kind = component_kind(comp)
        method = self._method(jpath, raw, jid, comp_id, comp, kind)
        if kind == "op" and method is None:
            return None
        fields_schema = allowed_fields(comp, method)
        comp_fields: dict[str, Any] = {
            k: v for k, v in comp.items() if k not in META_KEYS and k not in ("provider", "method")
        }
        origin: dict[str, Path_] = {k: (*cpath, k) for k in comp_fields}
        if kind == "train":
            self._flatten_lora(comp_fields, cpath, cpath)
        comp_inputs = input_names(comp_fields, cpath)
        job_input = self._job_input(jpath, raw)
        job_ctx = Context(scope, in_component=False)
        bindings: dict[str, ir.Value] = {}
        overrides: dict[str, ir.Value] = {}
        if job_input is not None:
            raw_overrides: dict[str, Any] = {}
            for key, value in job_input.items():
                ipath = (*jpath, "input", key)
                if key in comp_inputs:
                    consumer = _consumer(comp_fields, key)
                    bindings[key] = self.binder.value(value, ipath, job_ctx, consumer)
                elif key in fields_schema:
                    raw_overrides[key] = value
                    origin[key] = ipath
                else:
                    known = sorted(set(comp_inputs) | set(fields_schema))
                    self.error(
                        "unknown-input",
                        f"job input '{key}' is neither a field of component '{comp_id}' nor an"
                        f" input it uses (${{input.{key}}})",
                        ipath,
                        key=True,
                        suggestion=did_you_mean(key, known),
                    )
            if kind == "train":
                self._flatten_lora(raw_overrides, (*jpath, "input"), cpath, origin)
            for key, value in raw_overrides.items():
                overrides[key] = self.binder.value(value, origin[key], job_ctx, key)
        comp_ctx = Context(
            scope,
            in_component=True,
            bindings=bindings,
            passthrough=job_input is None,
            owner=comp_id,
        )
        fields: dict[str, ir.Value] = {}
        for key, value in comp_fields.items():
            if key not in overrides:
                fields[key] = self.binder.value(value, (*cpath, key), comp_ctx, key)
        fields.update(overrides)
        explicit = set(fields)
        for key, spec in fields_schema.items():
            if key in fields or key in ("provider", "lora", "distributed") or "default" not in spec:
                continue
            default = spec["default"]
            if isinstance(default, str) and ex.has_expression(default):
                fields[key] = self.binder.value(default, cpath, comp_ctx, key)
            else:
                fields[key] = ir.Lit(default)
        if kind == "train":
            self._trainer_defaults(fields, explicit, comp, comp_id)
        origin["__component__"] = cpath
        self.origins[(scope.workflow, jid)] = origin
        ordered = {k: fields[k] for k in fields_schema if k in fields}
        for k, v in fields.items():
            ordered.setdefault(k, v)
        return ir.Job(
            id=jid,
            component=comp_id,
            kind=kind,
            provider=comp.get("provider") if kind == "load" else None,
            method=method if kind == "op" else None,
            fields=ordered,
            explicit=frozenset(explicit),
            depends_on=(),
        )

    def _component_of(
        self, jpath: Path_, raw: dict[str, Any]
    ) -> tuple[str, int, dict[str, Any]] | None:
        comp_id = raw.get("component")
        if comp_id is None:
            if len(self.components) != 1:
                if self.components:
                    self.error(
                        "missing-component",
                        "the job does not say which 'component' it runs (there are"
                        f" {len(self.components)} components)",
                        jpath,
                    )
                return None
            comp_id = next(iter(self.components))
        if not isinstance(comp_id, str):
            return None
        if comp_id not in self.components:
            if comp_id not in self.invalid_components and not self.components_misspelt:
                self.error(
                    "unknown-component",
                    f"unknown component '{comp_id}'",
                    (*jpath, "component"),
                    suggestion=did_you_mean(comp_id, self.components),
                )
            return None
        cindex, comp = self.components[comp_id]
        return comp_id, cindex, comp

    def _method(
        self,
        jpath: Path_,
        raw: dict[str, Any],
        jid: str,
        comp_id: str,
        comp: dict[str, Any],
        kind: str,
    ) -> str | None:
        method = comp.get("method")
        job_method = raw.get("method")
        if job_method is not None:
            if kind != "op":
                what = "loader" if kind == "load" else "model-trainer"
                self.error(
                    "method-on-loader",
                    f"job '{jid}' gives a method, but component '{comp_id}' is a {what}",
                    (*jpath, "method"),
                )
            elif method is not None and method != job_method:
                self.error(
                    "method-conflict",
                    f"job '{jid}' asks for method '{job_method}', but component '{comp_id}'"
                    f" is a '{method}' operation",
                    (*jpath, "method"),
                )
            else:
                method = job_method
        if kind == "op" and method is None:
            self.error(
                "missing-method",
                f"component '{comp_id}' is an operations component: job '{jid}' must give a"
                " 'method' (concat, select, filter, map, interleave or deduplicate)",
                jpath,
            )
        return method if isinstance(method, str) else None

    def _job_input(self, jpath: Path_, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The job's input mapping; None when it passes the workflow's inputs through."""
        job_input = raw.get("input")
        if isinstance(job_input, dict):
            return job_input
        if isinstance(job_input, str):
            try:
                parsed = ex.parse(job_input)
            except ex.ExprError as err:
                self.error("expression", str(err), (*jpath, "input"), suggestion=err.suggestion)
                return None
            if not (
                isinstance(parsed, ex.Expr) and parsed.source == "input" and parsed.name is None
            ):
                self.error(
                    "unsupported",
                    "a job 'input' is a mapping (or ${input}, which passes the workflow's"
                    " inputs through)",
                    (*jpath, "input"),
                )
        return None

    def _trainer_defaults(
        self, fields: dict[str, ir.Value], explicit: set[str], comp: dict[str, Any], comp_id: str
    ) -> None:
        fields["distributed"] = ir.Lit(self._distributed(comp.get("distributed")))
        if "output_dir" not in fields:
            fields["output_dir"] = ir.Lit(f"./output/{comp_id}")
        _drop_unchosen(fields, explicit)

    def _distributed(self, raw: Any) -> dict[str, Any]:
        spec = sch.trainer_fields()["distributed"]["properties"]
        out = {k: v.get("default") for k, v in spec.items()}
        if isinstance(raw, dict):
            out.update(raw)
        if out.get("strategy") == "deepspeed" and out.get("zero_stage") is None:
            out["zero_stage"] = 2
        return out

    def _flatten_lora(
        self,
        fields: dict[str, Any],
        path: Path_,
        cpath: Path_,
        origin: dict[str, Path_] | None = None,
    ) -> None:
        """``lora: {rank, ...}`` becomes ``lora_r`` and the rest, positions kept."""
        nested = fields.pop("lora", None)
        if not isinstance(nested, dict):
            return
        for key, value in nested.items():
            flat = LORA_NESTED.get(key)
            if flat is None:
                continue
            if flat in fields:
                self.error(
                    "both-forms",
                    f"'lora.{key}' and '{flat}' are both given; use one",
                    (*path, "lora", key),
                    key=True,
                )
                continue
            fields[flat] = value
            if origin is not None:
                origin[flat] = (*path, "lora", key)
            else:
                self.doc.rename((*path, "lora", key), (*cpath, flat))
                self.nested_names[(*cpath, flat)] = f"lora.{key}"


def _drop_unchosen(fields: dict[str, ir.Value], explicit: set[str]) -> None:
    """Defaults of options the config did not choose are not settings of the program."""
    drop: list[str] = []
    adapter = fields.get("peft_adapter")
    if isinstance(adapter, ir.Lit) and adapter.value is None:
        drop += LORA_FIELDS
    quant = fields.get("quantization")
    if isinstance(quant, ir.Lit) and quant.value not in ("nf4", "int4"):
        drop += BNB4_FIELDS
    for key in drop:
        if key not in explicit:
            fields.pop(key, None)


def _consumer(comp_fields: dict[str, Any], name: str) -> str | None:
    """The component field that reads ``${input.NAME}``."""
    for key, value in comp_fields.items():
        if name in input_names(value, ()):
            return key
    return None
