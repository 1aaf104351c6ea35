"""Resolve a validated config into the IR: expressions, job inputs, the graph."""

from __future__ import annotations

import itertools
from typing import Any

from mccompile import ir
from mccompile.diagnostics import Diagnostics, Path_, Severity, closest, did_you_mean
from mccompile.frontend import expressions as ex
from mccompile.frontend.bind import Binder, Scope
from mccompile.frontend.graph import find_cycle, run_order
from mccompile.frontend.jobs import JobResolver
from mccompile.frontend.loader import Document

# the options every generated program defines itself (templates/_train.jinja's parse_args,
# templates/prepare.py.jinja's): a workflow input may not take their names
TRAIN_OPTIONS = ("help", "model", "output-dir", "max-steps", "resume", "dry-run", "overwrite")
PREPARE_OPTIONS = ("help", "output-dir")


class Resolver(JobResolver):
    """A config's workflows: their jobs in run order, their inputs and environment."""

    def __init__(self, doc: Document, diags: Diagnostics) -> None:
        self.doc = doc
        self.diags = diags
        self.data: dict[str, Any] = doc.data
        self.components: dict[str, tuple[int, dict[str, Any]]] = {}
        self.origins: dict[tuple[str, str], dict[str, Path_]] = {}
        self.invalid_components: set[str] = set()
        self.components_misspelt = False
        self.nested_names: dict[Path_, str] = {}
        self.binder = Binder(doc, diags)

    # -- helpers -----------------------------------------------------------------

    def warning(self, code: str, message: str, path: Path_) -> None:
        self.diags.warning(code, message, path, self.doc.pos(path))

    # -- components --------------------------------------------------------------

    def collect_components(self) -> None:
        if "components" not in self.data and any(
            closest(str(k), ("components",)) for k in self.data
        ):
            # a misspelt 'components:' is reported by the schema check; the jobs that name
            # its components say nothing more
            self.components_misspelt = True
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
        errors_before = self._errors()
        jobs_raw = wf.get("jobs")
        if not isinstance(jobs_raw, list) or not jobs_raw:
            misspelt = any(closest(str(k), ("jobs",)) for k in wf if k != "jobs")
            if "jobs" not in wf and not misspelt:  # a misspelt 'jobs:' is reported already
                self.error("no-jobs", f"workflow '{wid}' has no jobs", path)
            return None
        scope = Scope(wid)
        jobs: dict[str, ir.Job] = {}
        order_written: list[str] = []
        job_paths: dict[str, Path_] = {}
        names: dict[str, str] = {}  # the program's name of each job -> its id
        broken: set[Any] = set()
        for i, raw in enumerate(jobs_raw):
            jpath = (*path, "jobs", i) if path[0] == "workflows" else path
            if not isinstance(raw, dict):
                continue
            job = self.job(jpath, raw, scope)
            if job is None:
                # reported where it went wrong: references to it say nothing more
                broken.add(raw.get("id", raw.get("component")))
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
            twin = names.get(ir.identifier(job.id))
            if twin is not None:
                self.error(
                    "id-clash",
                    f"job ids '{twin}' and '{job.id}' become the same name in the program"
                    f" ({job.var}); rename one",
                    (*jpath, "id"),
                )
                continue
            jobs[job.id] = job
            names[ir.identifier(job.id)] = job.id
            order_written.append(job.id)
            job_paths[job.id] = jpath
        # dependencies: depends_on plus every ${jobs.X.output}
        edges: dict[str, list[str]] = {}
        edge_paths: dict[tuple[str, str], Path_] = {}
        for jid, job in jobs.items():
            deps: list[str] = []
            for dep, dpath in self._deps(job_paths[jid], jobs_raw, job):
                if dep not in jobs:
                    if dep in broken:
                        continue
                    self.error(
                        "unknown-job",
                        f"job '{jid}' refers to job '{dep}', which workflow '{wid}' does not have",
                        dpath,
                        suggestion=did_you_mean(dep, jobs),
                    )
                    continue
                if dep == jid:
                    self.error("cycle", f"job '{jid}' depends on itself", dpath)
                    continue
                edge_paths.setdefault((jid, dep), dpath)
                if dep not in deps:
                    deps.append(dep)
            edges[jid] = deps
        cycle = find_cycle(order_written, edges)
        if cycle:
            self._cycle(wid, cycle, edge_paths)
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
        after = _dependents(trainers[0].id, edges) if trainers else set()
        for job in ordered:
            if job.kind != "train" and job.id in after:
                self.error(
                    "after-training",
                    f"job '{job.id}' runs after training; jobs after the trainer are not supported",
                    job_paths[job.id],
                )
        result = self._result(path, wf, ordered, jobs)
        # a job that looks unused in a workflow with errors is most often what they broke
        if trainers and self._errors() == errors_before:
            self._check_used(ordered, trainers[0], job_paths)
        self._check_input_names(scope, bool(trainers))
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

    def _check_input_names(self, scope: Scope, trains: bool) -> None:
        """A workflow input becomes an option of the program: not one it has already."""
        own = TRAIN_OPTIONS if trains else PREPARE_OPTIONS
        for spec in scope.inputs.values():
            option = spec.name.replace("_", "-")
            if option in own:
                program = "training" if trains else "prepare"
                self.error(
                    "input-name",
                    f"input '{spec.name}' would be the option --{option}, which the {program}"
                    f" program has already ({', '.join('--' + o for o in own)}); rename it",
                    spec.path,
                )

    def _errors(self) -> int:
        return sum(1 for d in self.diags.items if d.severity is Severity.ERROR)

    def _cycle(self, wid: str, cycle: list[str], edge_paths: dict[tuple[str, str], Path_]) -> None:
        """An error at the first reference that forms the cycle, a note at each other one."""
        steps = list(itertools.pairwise(cycle))
        job, dep = steps[0]
        self.error(
            "cycle",
            f"the jobs of workflow '{wid}' form a cycle: {' -> '.join(cycle)};"
            f" job '{job}' depends on job '{dep}' here",
            edge_paths[(job, dep)],
        )
        for job, dep in steps[1:]:
            path = edge_paths[(job, dep)]
            self.diags.note(
                "cycle",
                f"job '{job}' depends on job '{dep}' here",
                path,
                self.doc.pos(path),
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
                self.error("expression", str(err), path + ("output",), suggestion=err.suggestion)
                return None
            if isinstance(parsed, ex.Expr) and parsed.source == "jobs" and not parsed.path:
                if parsed.name in jobs:
                    return parsed.name
                self.error(
                    "unknown-job",
                    f"the workflow output refers to job '{parsed.name}', which does not exist",
                    path + ("output",),
                    suggestion=did_you_mean(parsed.name or "", jobs),
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


def _number(path: Path_) -> int:
    """The 1-based number of the list item at the end of ``path``."""
    return path[-1] + 1 if isinstance(path[-1], int) else 1


def _dependents(start: str, edges: dict[str, list[str]]) -> set[str]:
    """The jobs that depend on ``start``, directly or through others (each edge walked once)."""
    users: dict[str, list[str]] = {}
    for job, deps in edges.items():
        for dep in deps:
            users.setdefault(dep, []).append(job)
    seen: set[str] = set()
    todo = list(users.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(users.get(node, []))
    return seen
