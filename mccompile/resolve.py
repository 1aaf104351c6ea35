"""Resolve a validated config into the IR: expressions, job inputs, the graph."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from mccompile import expr as ex
from mccompile import ir
from mccompile import schema as sch
from mccompile.errors import Diagnostics
from mccompile.graph import find_cycle, run_order
from mccompile.loader import Document, Path_
from mccompile.validate import suggest

META_KEYS = ("id", "type", "default", "title", "description")
DATASET_FIELDS = ("dataset", "eval_dataset", "datasets")
LORA_NESTED = {
    "rank": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_modules": "lora_target_modules",
    "bias": "lora_bias",
}


@dataclass
class _Input:
    name: str
    type: str
    default: Any
    has_default: bool
    path: Path_
    help: str


@dataclass
class _Scope:
    """What one workflow collects while its jobs are resolved."""

    workflow: str
    inputs: dict[str, _Input] = field(default_factory=dict)
    env: dict[str, ir.EnvRef] = field(default_factory=dict)


def component_kind(comp: dict[str, Any], method: Any = None) -> str:
    if comp.get("type") == "model-trainer":
        return "train"
    if comp.get("provider") is not None:
        return "load"
    return "op"


def allowed_fields(comp: dict[str, Any], method: str | None) -> dict[str, Any]:
    """The fields a job of this component may set or override."""
    if comp.get("type") == "model-trainer":
        return {k: v for k, v in sch.trainer_fields().items() if k not in META_KEYS}
    provider = comp.get("provider")
    if isinstance(provider, str):
        return dict(sch.loader_fields(provider))
    return dict(sch.operation_fields(method or "")) if method else {}


class Resolver:
    def __init__(self, doc: Document, diags: Diagnostics) -> None:
        self.doc = doc
        self.diags = diags
        self.data: dict[str, Any] = doc.data
        self.components: dict[str, tuple[int, dict[str, Any]]] = {}
        self.origins: dict[tuple[str, str], dict[str, Path_]] = {}

    # -- helpers -----------------------------------------------------------------

    def error(self, code: str, message: str, path: Path_, key: bool = False) -> None:
        pos = self.doc.kpos(path) if key else self.doc.pos(path)
        self.diags.error(code, message, path, pos)

    def warning(self, code: str, message: str, path: Path_) -> None:
        self.diags.warning(code, message, path, self.doc.pos(path))

    # -- components --------------------------------------------------------------

    def collect_components(self) -> None:
        comps = self.data.get("components") or []
        if not isinstance(comps, list):
            return
        for i, comp in enumerate(comps):
            if not isinstance(comp, dict):
                continue
            cid = comp.get("id")
            if cid is None:
                if len(comps) == 1:
                    cid = "component"
                else:
                    self.error(
                        "missing-id",
                        f"component #{i + 1} needs an 'id' (there are several components)",
                        ("components", i),
                    )
                    continue
            if not isinstance(cid, str):
                continue
            if cid in self.components:
                first = self.doc.pos(("components", self.components[cid][0], "id"))
                line = f" (first at line {first.line})" if first else ""
                self.error(
                    "duplicate-id",
                    f"duplicate component id '{cid}'{line}",
                    ("components", i, "id"),
                )
                continue
            self.components[cid] = (i, comp)

    # -- workflows ---------------------------------------------------------------

    def workflows(self) -> list[tuple[Path_, dict[str, Any]]]:
        raw = self.data.get("workflows")
        if isinstance(raw, list) and raw:
            return [(("workflows", i), wf) for i, wf in enumerate(raw) if isinstance(wf, dict)]
        return self.default_workflow()

    def default_workflow(self) -> list[tuple[Path_, dict[str, Any]]]:
        if not self.components:
            if not self.diags.has_errors:
                self.error("nothing-to-build", "the config declares no components", ())
            return []
        marked = [cid for cid, (_, c) in self.components.items() if c.get("default") is True]
        trainers = [
            cid for cid, (_, c) in self.components.items() if c.get("type") == "model-trainer"
        ]
        if len(self.components) == 1:
            chosen = next(iter(self.components))
        elif len(marked) == 1:
            chosen = marked[0]
        elif len(marked) > 1:
            for cid in marked[1:]:
                self.error(
                    "ambiguous-default",
                    f"components '{marked[0]}' and '{cid}' are both marked default: true",
                    ("components", self.components[cid][0], "default"),
                )
            return []
        elif len(trainers) == 1:
            chosen = trainers[0]
        else:
            what = "several model-trainer components" if trainers else "no model-trainer component"
            self.error(
                "ambiguous-default",
                f"there is no workflow and {what}: add a workflow, or mark one"
                " component default: true",
                ("components",),
            )
            return []
        index = self.components[chosen][0]
        wf = {"id": chosen, "jobs": [{"id": chosen, "component": chosen}]}
        self.doc.value_pos.setdefault(("__default__",), self.doc.pos(("components", index)))  # type: ignore[arg-type]
        return [(("components", index), wf)]

    def resolve(self) -> list[ir.Workflow]:
        self.collect_components()
        workflows = self.workflows()
        out: list[ir.Workflow] = []
        seen: dict[str, Path_] = {}
        defaults = []
        for path, wf in workflows:
            wid = wf.get("id")
            if wid is None:
                wid = "workflow" if len(workflows) == 1 else None
            if not isinstance(wid, str):
                if wid is None:
                    self.error(
                        "missing-id",
                        f"workflow #{path[-1] if isinstance(path[-1], int) else 0} needs an 'id'"
                        " (there are several workflows)",
                        path,
                    )
                continue
            if wid in seen:
                self.error("duplicate-id", f"duplicate workflow id '{wid}'", path + ("id",))
                continue
            seen[wid] = path
            if wf.get("default") is True:
                defaults.append((wid, path))
            resolved = self.workflow(path, wid, wf)
            if resolved is not None:
                out.append(resolved)
        if len(defaults) > 1:
            for wid, path in defaults[1:]:
                self.error(
                    "ambiguous-default",
                    f"workflows '{defaults[0][0]}' and '{wid}' are both marked default: true",
                    path + ("default",),
                )
        return out

    def workflow(self, path: Path_, wid: str, wf: dict[str, Any]) -> ir.Workflow | None:
        jobs_raw = wf.get("jobs")
        if not isinstance(jobs_raw, list) or not jobs_raw:
            if "jobs" not in wf:
                self.error("no-jobs", f"workflow '{wid}' has no jobs", path)
            return None
        scope = _Scope(wid)
        jobs: dict[str, ir.Job] = {}
        order_written: list[str] = []
        job_paths: dict[str, Path_] = {}
        for i, raw in enumerate(jobs_raw):
            jpath = (*path, "jobs", i) if path[0] == "workflows" else path
            if not isinstance(raw, dict):
                continue
            job = self.job(jpath, raw, scope, len(jobs_raw))
            if job is None:
                continue
            if job.id in jobs:
                self.error(
                    "duplicate-id",
                    f"duplicate job id '{job.id}' in workflow '{wid}'",
                    jpath + ("id",),
                )
                continue
            jobs[job.id] = job
            order_written.append(job.id)
            job_paths[job.id] = jpath
        # dependencies: depends_on plus every ${jobs.X.output}
        edges: dict[str, list[str]] = {}
        for jid, job in jobs.items():
            deps: list[str] = []
            for dep, dpath in self._deps(job_paths[jid], jobs_raw, job):
                if dep not in jobs:
                    hint = suggest(dep, jobs)
                    self.error(
                        "unknown-job",
                        f"job '{jid}' refers to job '{dep}', which workflow '{wid}' does not"
                        f" have{hint}",
                        dpath,
                    )
                    continue
                if dep == jid:
                    self.error("cycle", f"job '{jid}' depends on itself", dpath)
                    continue
                if dep not in deps:
                    deps.append(dep)
            edges[jid] = deps
        cycle = find_cycle(order_written, edges)
        if cycle:
            self.error(
                "cycle",
                f"the jobs of workflow '{wid}' form a cycle: {' -> '.join(cycle)}",
                job_paths[cycle[0]],
            )
            return None
        order = run_order(order_written, edges)
        ordered = tuple(
            ir.Job(
                id=jobs[j].id,
                component=jobs[j].component,
                kind=jobs[j].kind,
                provider=jobs[j].provider,
                method=jobs[j].method,
                fields=jobs[j].fields,
                explicit=jobs[j].explicit,
                depends_on=tuple(edges[j]),
            )
            for j in order
        )
        trainers = [j for j in ordered if j.kind == "train"]
        if len(trainers) > 1:
            self.error(
                "several-trainers",
                f"workflow '{wid}' has {len(trainers)} model-trainer jobs; mccompile builds one"
                " training program per workflow (split them into workflows)",
                job_paths[trainers[1].id],
            )
        for job in ordered:
            if trainers and job.kind != "train" and trainers[0].id in _reach(job.id, edges):
                self.error(
                    "after-training",
                    f"job '{job.id}' runs after training; jobs after the trainer are not supported",
                    job_paths[job.id],
                )
        result = self._result(path, wf, ordered, jobs)
        if trainers:
            self._check_used(ordered, trainers[0], job_paths)
        inputs = tuple(
            ir.Input(
                name=i.name,
                type=i.type,
                default=i.default,
                required=not i.has_default,
                help=i.help,
            )
            for i in scope.inputs.values()
        )
        title = wf.get("title") if isinstance(wf.get("title"), str) else None
        desc = wf.get("description") if isinstance(wf.get("description"), str) else None
        return ir.Workflow(
            id=wid,
            title=title,
            description=desc,
            default=wf.get("default") is True,
            jobs=ordered,
            inputs=inputs,
            env=tuple(scope.env.values()),
            result=result,
        )

    def _result(
        self, path: Path_, wf: dict[str, Any], ordered: tuple[ir.Job, ...], jobs: dict[str, ir.Job]
    ) -> str | None:
        """The job whose dataset a prepare-only workflow saves."""
        if any(j.kind == "train" for j in ordered):
            return None
        out = wf.get("output")
        if isinstance(out, str):
            try:
                parsed = ex.parse(out)
            except ex.ExprError as err:
                self.error("expression", str(err), path + ("output",))
                return None
            if isinstance(parsed, ex.Expr) and parsed.source == "jobs" and not parsed.path:
                if parsed.name in jobs:
                    return parsed.name
                self.error(
                    "unknown-job",
                    f"the workflow output refers to job '{parsed.name}', which does not exist"
                    f"{suggest(parsed.name or '', jobs)}",
                    path + ("output",),
                )
                return None
            self.error(
                "unsupported",
                "a workflow output must be ${jobs.ID.output} (the dataset to save)",
                path + ("output",),
            )
            return None
        if out is not None:
            self.warning("ignored-key", "the workflow 'output' mapping is ignored", path + ("output",))
        return ordered[-1].id if ordered else None

    def _check_used(
        self, ordered: tuple[ir.Job, ...], trainer: ir.Job, job_paths: dict[str, Path_]
    ) -> None:
        used: set[str] = set()
        for job in ordered:
            for value in job.fields.values():
                used.update(r.job for r in ir.refs(value) if isinstance(r, ir.JobRef))
        for job in ordered:
            if job.kind != "train" and job.id not in used:
                self.warning(
                    "unused-job",
                    f"the output of job '{job.id}' is used by no other job; the training program"
                    " will still run it",
                    job_paths[job.id],
                )

    def _deps(
        self, jpath: Path_, jobs_raw: list[Any], job: ir.Job
    ) -> list[tuple[str, Path_]]:
        raw = self._raw_at(jpath)
        out: list[tuple[str, Path_]] = []
        deps = raw.get("depends_on") if isinstance(raw, dict) else None
        if isinstance(deps, str):
            out.append((deps, jpath + ("depends_on",)))
        elif isinstance(deps, list):
            for k, dep in enumerate(deps):
                if isinstance(dep, str):
                    out.append((dep, jpath + ("depends_on", k)))
        for name, value in job.fields.items():
            for ref in ir.refs(value):
                if isinstance(ref, ir.JobRef):
                    out.append((ref.job, self._field_path(jpath, raw, name)))
        return out

    def _raw_at(self, path: Path_) -> Any:
        node: Any = self.data
        if path and path[0] == "components":
            # the implicit default workflow: its single job
            return {}
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def _field_path(self, jpath: Path_, raw: Any, name: str) -> Path_:
        if isinstance(raw, dict) and isinstance(raw.get("input"), dict) and name in raw["input"]:
            return jpath + ("input", name)
        return jpath

    # -- jobs --------------------------------------------------------------------

    def job(self, jpath: Path_, raw: dict[str, Any], scope: _Scope, count: int) -> ir.Job | None:
        comp_id = raw.get("component")
        if comp_id is None:
            if len(self.components) == 1:
                comp_id = next(iter(self.components))
            else:
                self.error(
                    "missing-component",
                    "the job does not say which 'component' it runs (there are"
                    f" {len(self.components)} components)",
                    jpath,
                )
                return None
        if not isinstance(comp_id, str):
            return None
        if comp_id not in self.components:
            self.error(
                "unknown-component",
                f"unknown component '{comp_id}'{suggest(comp_id, self.components)}",
                jpath + ("component",),
            )
            return None
        cindex, comp = self.components[comp_id]
        cpath: Path_ = ("components", cindex)
        jid = raw.get("id")
        if jid is None:
            jid = comp_id
        if not isinstance(jid, str):
            return None
        if raw.get("output") not in (None, "${output}") and not (
            isinstance(raw.get("output"), str) and raw["output"].replace(" ", "") == "${output}"
        ):
            self.error(
                "unsupported",
                "a job's output can only be ${output} (the job's result) in mccompile",
                jpath + ("output",),
            )
        kind = component_kind(comp)
        method = comp.get("method")
        job_method = raw.get("method")
        if job_method is not None:
            if kind != "op":
                self.error(
                    "method-on-loader",
                    f"job '{jid}' gives a method, but component '{comp_id}' is a"
                    f" {'loader' if kind == 'load' else 'model-trainer'}",
                    jpath + ("method",),
                )
            elif method is not None and method != job_method:
                self.error(
                    "method-conflict",
                    f"job '{jid}' asks for method '{job_method}', but component '{comp_id}'"
                    f" is a '{method}' operation",
                    jpath + ("method",),
                )
            else:
                method = job_method
        if kind == "op" and method is None:
            self.error(
                "missing-method",
                f"component '{comp_id}' is an operations component: job '{jid}' must give a"
                " 'method' (concat, select, filter or map)",
                jpath,
            )
            return None
        if not isinstance(method, (str, type(None))):
            return None
        fields_schema = allowed_fields(comp, method)
        # component fields (component scope)
        comp_fields: dict[str, Any] = {
            k: v for k, v in comp.items() if k not in META_KEYS and k not in ("provider", "method")
        }
        if kind == "train":
            self._flatten_lora(comp_fields, cpath)
        comp_inputs = self._input_names(comp_fields, cpath)
        job_input = raw.get("input")
        bindings: dict[str, ir.Value] = {}
        overrides: dict[str, ir.Value] = {}
        origin: dict[str, Path_] = {k: cpath + (k,) for k in comp_fields}
        if isinstance(job_input, str):
            try:
                parsed = ex.parse(job_input)
            except ex.ExprError as err:
                self.error("expression", str(err), jpath + ("input",))
                parsed = None
            if not (isinstance(parsed, ex.Expr) and parsed.source == "input" and parsed.name is None):
                if parsed is not None:
                    self.error(
                        "unsupported",
                        "a job 'input' is a mapping (or ${input}, which passes the workflow's"
                        " inputs through)",
                        jpath + ("input",),
                    )
            job_input = None
        if isinstance(job_input, dict):
            for key, value in job_input.items():
                ipath = jpath + ("input", key)
                field_schema = fields_schema.get(key)
                if key in comp_inputs:
                    hint_type = self._field_type_for_input(comp_fields, key)
                    bindings[key] = self.value(value, ipath, scope, "job", hint_type, key)
                elif field_schema is not None or (kind == "train" and key in LORA_NESTED):
                    overrides[key] = self.value(
                        value, ipath, scope, "job", _type_hint(field_schema, key), key
                    )
                    origin[key] = ipath
                else:
                    known = sorted(set(comp_inputs) | set(fields_schema))
                    self.error(
                        "unknown-input",
                        f"job input '{key}' is neither a field of component '{comp_id}' nor an"
                        f" input it uses (${{input.{key}}}){suggest(key, known)}",
                        ipath,
                        key=True,
                    )
        fields: dict[str, ir.Value] = {}
        explicit: set[str] = set()
        for key, value in comp_fields.items():
            if key in overrides:
                continue
            fpath = cpath + (key,)
            fields[key] = self.component_value(
                value,
                fpath,
                scope,
                bindings,
                passthrough=not isinstance(job_input, dict),
                type_hint=_type_hint(fields_schema.get(key), key),
                comp_id=comp_id,
                job_id=jid,
                jpath=jpath,
            )
            explicit.add(key)
        for key, value in overrides.items():
            fields[key] = value
            explicit.add(key)
        if kind == "train":
            self._check_lora_forms(comp_fields, overrides, jpath)
        # defaults written out
        for key, spec in fields_schema.items():
            if key in fields or key in ("provider", "lora", "distributed"):
                continue
            if "default" in spec:
                default = spec["default"]
                if isinstance(default, str) and ex.has_expression(default):
                    fields[key] = self.component_value(
                        default, cpath, scope, bindings, not isinstance(job_input, dict),
                        _type_hint(spec, key), comp_id, jid, jpath,
                    )
                else:
                    fields[key] = ir.Lit(default)
        if kind == "train":
            fields["distributed"] = ir.Lit(self._distributed(comp.get("distributed")))
            if fields.get("output_dir") is None:
                fields["output_dir"] = ir.Lit(f"./output/{comp_id}")
            if ir.lit(fields["task"]) == "classification" and ir.lit(fields["text_column"]) is None:
                if "text_column" not in explicit:
                    fields["text_column"] = ir.Lit("text")
        origin["__component__"] = cpath
        self.origins[(scope.workflow, jid)] = origin
        if kind == "train":
            _drop_unchosen(fields, explicit)
        ordered = {k: fields[k] for k in fields_schema if k in fields}
        for k in fields:
            ordered.setdefault(k, fields[k])
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

    def _distributed(self, raw: Any) -> dict[str, Any]:
        spec = sch.trainer_fields()["distributed"]["properties"]
        out = {k: v.get("default") for k, v in spec.items()}
        if isinstance(raw, dict):
            out.update(raw)
        if out.get("strategy") == "deepspeed" and out.get("zero_stage") is None:
            out["zero_stage"] = 2
        return out

    def _flatten_lora(self, fields: dict[str, Any], cpath: Path_) -> None:
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
                    cpath + ("lora", key),
                    key=True,
                )
                continue
            fields[flat] = value
            self.doc.rename(cpath + ("lora", key), cpath + (flat,))

    def _check_lora_forms(
        self, comp_fields: dict[str, Any], overrides: dict[str, ir.Value], jpath: Path_
    ) -> None:
        for key in list(overrides):
            if key in LORA_NESTED:
                overrides[LORA_NESTED[key]] = overrides.pop(key)

    def _input_names(self, value: Any, path: Path_) -> set[str]:
        names: set[str] = set()
        for text, _p in _strings(value, path):
            try:
                parsed = ex.parse(text)
            except ex.ExprError:
                continue
            for e in _exprs(parsed):
                if e.source == "input" and e.name:
                    names.add(e.name)
        return names

    def _field_type_for_input(self, comp_fields: dict[str, Any], name: str) -> str | None:
        for key, value in comp_fields.items():
            if isinstance(value, str) and f"input.{name}" in value.replace(" ", ""):
                return key
        return None

    # -- values ------------------------------------------------------------------

    def value(
        self,
        raw: Any,
        path: Path_,
        scope: _Scope,
        where: str,
        type_hint: str | None,
        field_name: str | None,
        bindings: dict[str, ir.Value] | None = None,
        passthrough: bool = True,
        owner: str = "",
    ) -> ir.Value:
        """Turn raw config data into a Value, in job (workflow) or component scope."""
        if isinstance(raw, str):
            return self._string(raw, path, scope, where, type_hint, field_name, bindings, passthrough, owner)
        if isinstance(raw, list):
            items = [
                self.value(v, path + (i,), scope, where, type_hint, field_name, bindings, passthrough, owner)
                for i, v in enumerate(raw)
            ]
            if all(isinstance(v, ir.Lit) for v in items):
                return ir.Lit([v.value for v in items if isinstance(v, ir.Lit)])
            return ir.Seq(tuple(items))
        if isinstance(raw, dict):
            for text, spath in _strings(raw, path):
                if ex.has_expression(text):
                    self.error(
                        "unsupported",
                        "expressions inside a mapping are not supported; give the whole mapping"
                        " as one ${input.NAME as object}",
                        spath,
                    )
            return ir.Lit(raw)
        return ir.Lit(raw)

    def _string(
        self,
        raw: str,
        path: Path_,
        scope: _Scope,
        where: str,
        type_hint: str | None,
        field_name: str | None,
        bindings: dict[str, ir.Value] | None,
        passthrough: bool,
        owner: str,
    ) -> ir.Value:
        try:
            parsed = ex.parse(raw)
        except ex.ExprError as err:
            self.error("expression", str(err), path)
            return ir.Lit(raw)
        if isinstance(parsed, str):
            return ir.Lit(parsed)
        if isinstance(parsed, ex.Expr):
            return self._expr(parsed, path, scope, where, type_hint, field_name, bindings, passthrough, owner)
        parts: list[str | ir.InputRef | ir.EnvRef | ir.JobRef] = []
        for part in parsed.parts:
            if isinstance(part, str):
                parts.append(part)
                continue
            value = self._expr(part, path, scope, where, "string", field_name, bindings, passthrough, owner)
            if isinstance(value, ir.Lit):
                parts.append(str(value.value))
            elif isinstance(value, ir.JobRef):
                self.error(
                    "type",
                    f"{part.text} is a dataset and cannot be part of a text",
                    path,
                )
            elif isinstance(value, (ir.InputRef, ir.EnvRef)):
                parts.append(value)
            elif isinstance(value, ir.Interp):
                parts.extend(value.parts)
        if all(isinstance(p, str) for p in parts):
            return ir.Lit("".join(p for p in parts if isinstance(p, str)))
        return ir.Interp(tuple(parts))

    def _expr(
        self,
        e: ex.Expr,
        path: Path_,
        scope: _Scope,
        where: str,
        type_hint: str | None,
        field_name: str | None,
        bindings: dict[str, ir.Value] | None,
        passthrough: bool,
        owner: str,
    ) -> ir.Value:
        if e.source == "env":
            assert e.name is not None
            if e.type not in (None, "string", "text"):
                self.error("type", f"{e.text}: environment values are text", path)
            scope.env.setdefault(e.name, ir.EnvRef(e.name, e.default))
            return ir.EnvRef(e.name, e.default)
        if e.source == "output":
            self.error(
                "unsupported",
                f"{e.text} can only stand as a job's output",
                path,
            )
            return ir.Lit(None)
        if e.source == "jobs":
            if where == "component":
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
                    "type",
                    f"{e.text} is a dataset, but '{field_name}' does not take a dataset",
                    path,
                )
            assert e.name is not None
            return ir.JobRef(e.name)
        # input
        if e.name is None:
            self.error("unsupported", f"{e.text}: name the input, as ${{input.NAME}}", path)
            return ir.Lit(None)
        if e.path:
            self.error(
                "unsupported",
                f"{e.text}: a path into an input is not supported; use ${{input.{e.name}}}",
                path,
            )
        if where == "component" and bindings is not None and e.name in bindings:
            bound = bindings[e.name]
            if isinstance(bound, ir.InputRef) and e.default is not None:
                known = scope.inputs.get(bound.name)
                if known is not None and not known.has_default:
                    known.default = self._default(e, type_hint, path)
                    known.has_default = True
            return bound
        if where == "component" and not passthrough:
            if e.default is not None:
                return ir.Lit(self._default(e, type_hint, path))
            self.error(
                "missing-input",
                f"component '{owner}' uses {e.text}, but the job's input gives no '{e.name}'"
                " and it has no default",
                path,
            )
            return ir.Lit(None)
        return self._workflow_input(e, path, scope, type_hint, field_name)

    def _default(self, e: ex.Expr, type_hint: str | None, path: Path_) -> Any:
        assert e.default is not None
        try:
            return ex.convert(e.default, e.type or _convert_type(type_hint))
        except ex.ExprError as err:
            self.error("expression", f"{e.text}: {err}", path)
            return None

    def _workflow_input(
        self, e: ex.Expr, path: Path_, scope: _Scope, type_hint: str | None, field_name: str | None
    ) -> ir.Value:
        assert e.name is not None
        type_ = e.type or ("dataset" if field_name in DATASET_FIELDS else type_hint) or "string"
        if type_ == "text":
            type_ = "string"
        default = self._default(e, type_hint, path) if e.default is not None else None
        known = scope.inputs.get(e.name)
        if known is None:
            scope.inputs[e.name] = _Input(
                e.name, type_, default, e.default is not None, path, _help(field_name, type_)
            )
        else:
            if known.type != type_ and "dataset" not in (known.type, type_):
                self.error(
                    "input-type",
                    f"input '{e.name}' is used as {type_} here but as {known.type} at line"
                    f" {self.doc.pos(known.path).line if self.doc.pos(known.path) else '?'}",
                    path,
                )
            if e.default is not None and not known.has_default:
                known.default = default
                known.has_default = True
        return ir.InputRef(e.name)

    def component_value(
        self,
        raw: Any,
        path: Path_,
        scope: _Scope,
        bindings: dict[str, ir.Value],
        passthrough: bool,
        type_hint: str | None,
        comp_id: str,
        job_id: str,
        jpath: Path_,
    ) -> ir.Value:
        return self.value(
            raw, path, scope, "component", type_hint, _field_of(path), bindings, passthrough, comp_id
        )


SFT_FIELDS = (
    "packing", "prompt_column", "response_column", "system_column", "messages_column",
    "train_on_prompt",
)
CLASSIFICATION_FIELDS = ("text_pair_column", "label_column", "labels")
LORA_FIELDS = (
    "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_bias", "use_dora",
    "use_rslora", "lora_modules_to_save", "merge_adapter",
)
BNB4_FIELDS = ("bnb_4bit_compute_dtype", "bnb_4bit_use_double_quant")


def _drop_unchosen(fields: dict[str, ir.Value], explicit: set[str]) -> None:
    """Defaults of options the config did not choose are not settings of the program."""
    task = ir.lit(fields.get("task", ir.Lit("sft")))
    drop: list[str] = list(CLASSIFICATION_FIELDS if task == "sft" else SFT_FIELDS)
    adapter = fields.get("peft_adapter")
    if isinstance(adapter, ir.Lit) and adapter.value is None:
        drop += LORA_FIELDS
    quant = fields.get("quantization")
    if isinstance(quant, ir.Lit) and quant.value not in ("nf4", "int4"):
        drop += BNB4_FIELDS
    for key in drop:
        if key not in explicit:
            fields.pop(key, None)


def _field_of(path: Path_) -> str | None:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


def _help(field_name: str | None, type_: str) -> str:
    if type_ == "dataset":
        return "a dataset: a .json/.jsonl/.csv/.parquet/.txt file, a save_to_disk folder, a local dataset folder or a hub id"
    if field_name:
        return f"sets {field_name}"
    return ""


def _convert_type(hint: str | None) -> str | None:
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(hint or "")


def _type_hint(field_schema: dict[str, Any] | None, key: str) -> str | None:
    if key in LORA_NESTED:
        field_schema = sch.trainer_fields().get(LORA_NESTED[key])
    if not field_schema:
        return None
    types = sch.field_types(field_schema) - {"null"}
    for t in ("integer", "number", "boolean"):
        if types == {t}:
            return t
    if types == {"integer", "number"}:
        return "number"
    if types == {"string"}:
        return "string"
    if "array" in types:
        return "list"
    if "object" in types and key == "condition":
        return "object"
    return None


def _strings(value: Any, path: Path_) -> list[tuple[str, Path_]]:
    if isinstance(value, str):
        return [(value, path)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, path + (i,))]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, path + (k,))]
    return []


def _exprs(parsed: ex.Parsed) -> list[ex.Expr]:
    if isinstance(parsed, ex.Expr):
        return [parsed]
    if isinstance(parsed, ex.Interpolation):
        return [p for p in parsed.parts if isinstance(p, ex.Expr)]
    return []


def _reach(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, []))
    return seen


def config_sha256(doc_text: bytes) -> str:
    return hashlib.sha256(doc_text).hexdigest()
