"""Resolve a validated config into the IR: expressions, job inputs, the graph."""

from __future__ import annotations

from typing import Any

from mccompile import expr as ex
from mccompile import ir
from mccompile import schema as sch
from mccompile.bind import Binder, Context, Scope, input_names
from mccompile.errors import Diagnostics
from mccompile.fields import BNB4_FIELDS, CLASSIFICATION_FIELDS, LORA_FIELDS, SFT_FIELDS
from mccompile.graph import find_cycle, run_order
from mccompile.loader import Document, Path_
from mccompile.validate import suggest

META_KEYS = ("id", "type", "default", "title", "description")
LORA_NESTED = {
    "rank": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "target_modules": "lora_target_modules",
    "bias": "lora_bias",
}


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
        self.invalid_components: set[str] = set()
        self.nested_names: dict[Path_, str] = {}
        self.binder = Binder(doc, diags)

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
            if comp.get("type") not in ("datasets", "model-trainer"):
                self.invalid_components.add(cid)  # reported by the schema check
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
                        f"workflow #{_number(path)} needs an 'id' (there are several workflows)",
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
        scope = Scope(wid)
        jobs: dict[str, ir.Job] = {}
        order_written: list[str] = []
        job_paths: dict[str, Path_] = {}
        for i, raw in enumerate(jobs_raw):
            jpath = (*path, "jobs", i) if path[0] == "workflows" else path
            if not isinstance(raw, dict):
                continue
            job = self.job(jpath, raw, scope)
            if job is None:
                continue
            if job.id in jobs:
                implicit = "id" not in raw
                self.error(
                    "duplicate-id",
                    f"duplicate job id '{job.id}' in workflow '{wid}'"
                    + (
                        " (a job without an id takes its component's id; give the jobs ids)"
                        if implicit
                        else ""
                    ),
                    (*jpath, "id") if not implicit else jpath,
                )
                continue
            twin = next((j for j in jobs if ir.identifier(j) == ir.identifier(job.id)), None)
            if twin is not None:
                self.error(
                    "id-clash",
                    f"job ids '{twin}' and '{job.id}' become the same name in the program"
                    f" ({job.var}); rename one",
                    (*jpath, "id"),
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
            self.warning(
                "ignored-key", "the workflow 'output' mapping is ignored", path + ("output",)
            )
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

    def _deps(self, jpath: Path_, jobs_raw: list[Any], job: ir.Job) -> list[tuple[str, Path_]]:
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
                        f" input it uses (${{input.{key}}}){suggest(key, known)}",
                        ipath,
                        key=True,
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
            if comp_id not in self.invalid_components:
                self.error(
                    "unknown-component",
                    f"unknown component '{comp_id}'{suggest(comp_id, self.components)}",
                    (*jpath, "component"),
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
                " 'method' (concat, select, filter or map)",
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
                self.error("expression", str(err), (*jpath, "input"))
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
        classification = ir.lit(fields["task"]) == "classification"
        if classification and "text_column" not in explicit:
            fields["text_column"] = ir.Lit("text")
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


def _number(path: Path_) -> int:
    """The 1-based number of the list item at the end of ``path``."""
    return path[-1] + 1 if isinstance(path[-1], int) else 1


def _consumer(comp_fields: dict[str, Any], name: str) -> str | None:
    """The component field that reads ``${input.NAME}``."""
    for key, value in comp_fields.items():
        if name in input_names(value, ()):
            return key
    return None


def _reach(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, []))
    return seen
