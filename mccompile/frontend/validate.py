"""Schema validation: every jsonschema error becomes a diagnostic at file:line:col."""

from __future__ import annotations

import math
from typing import Any

from mccompile import tasks
from mccompile.diagnostics import Diagnostics, Path_, did_you_mean
from mccompile.frontend import schema as sch
from mccompile.frontend.loader import Document

IGNORED_TOP_LEVEL = ("controller", "listeners", "gateways", "systems", "tracers", "loggers")

_SINGULAR = (("component", "components"), ("workflow", "workflows"))


def normalize(doc: Document, diags: Diagnostics) -> None:
    """``component:``/``workflow:``/``job:`` become one-item lists, positions kept."""
    data = doc.data
    for single, plural in _SINGULAR:
        if single in data and isinstance(data[single], list) and plural not in data:
            # a list under the singular key: the plural was meant
            diags.error(
                "unknown-key",
                f"'{single}' holds a list of {plural}",
                (single,),
                doc.kpos((single,)),
                suggestion=f"did you mean '{plural}'?",
            )
            doc.rename((single,), (plural,))
            data[plural] = data.pop(single)
            continue
        if single in data:
            if plural in data:
                diags.error(
                    "both-forms",
                    f"'{single}' and '{plural}' are both given; use one",
                    (single,),
                    doc.kpos((single,)),
                )
                doc.reported.add((single,))  # reported: the schema check stays quiet about it
                continue
            doc.rename((plural,), (plural, "__shadow__"))
            doc.rename((single,), (plural, 0))
            data[plural] = [data.pop(single)]
    for key in IGNORED_TOP_LEVEL:
        if key in data:
            diags.warning(
                "ignored-key",
                f"'{key}' is a model-compose key that mccompile ignores",
                (key,),
                doc.kpos((key,)),
            )
    workflows = data.get("workflows")
    if isinstance(workflows, list):
        for i, wf in enumerate(workflows):
            if isinstance(wf, dict) and "job" in wf:
                if "jobs" in wf:
                    diags.error(
                        "both-forms",
                        "'job' and 'jobs' are both given; use one",
                        ("workflows", i, "job"),
                        doc.kpos(("workflows", i, "job")),
                    )
                    continue
                doc.rename(("workflows", i, "job"), ("workflows", i, "jobs", 0))
                wf["jobs"] = [wf.pop("job")]


def where(data: Any, path: Path_) -> str:
    """' in component 'x'' and the like, for messages."""
    if len(path) >= 2 and path[0] == "components":
        comp = _get(data, path[:2])
        cid = comp.get("id") if isinstance(comp, dict) else None
        return f" in component '{cid}'" if isinstance(cid, str) else f" in component #{_n(path[1])}"
    if len(path) >= 2 and path[0] == "workflows":
        wf = _get(data, path[:2])
        wid = wf.get("id") if isinstance(wf, dict) else None
        wname = f"workflow '{wid}'" if isinstance(wid, str) else f"workflow #{_n(path[1])}"
        if len(path) >= 4 and path[2] == "jobs":
            job = _get(data, path[:4])
            jid = job.get("id") if isinstance(job, dict) else None
            jname = f"job '{jid}'" if isinstance(jid, str) else f"job #{_n(path[3])}"
            return f" in {jname} of {wname}"
        return f" in {wname}"
    return ""


def _n(index: str | int) -> int:
    return int(index) + 1 if isinstance(index, int) else 0


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, float) and value.is_integer():
        return f"number {value!r} (written as a float)"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string '{shown}'"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _expected(sub: dict[str, Any]) -> list[str]:
    """Readable alternatives a (sub)schema accepts."""
    if "$ref" in sub and sub["$ref"] == "#/$defs/expression":
        return ["a ${...} expression"]
    if "$ref" in sub:
        name = sub["$ref"].rsplit("/", 1)[-1]
        return [f"a {name.replace('_', ' ')}"] if name != "condition" else ["a condition"]
    if "enum" in sub:
        return ["one of " + ", ".join("null" if v is None else str(v) for v in sub["enum"])]
    if "const" in sub:
        return [f"'{sub['const']}'"]
    t = sub.get("type")
    if isinstance(t, list):
        return [_TYPE_WORDS.get(str(x), str(x)) for x in t]
    if isinstance(t, str):
        word = _TYPE_WORDS.get(t, t)
        if t == "array" and isinstance(sub.get("items"), dict) and "type" in sub["items"]:
            word = f"a list of {sub['items']['type']}s"
        return [word]
    out: list[str] = []
    for alt in sub.get("anyOf", []):
        out.extend(_expected(alt))
    return out


def _allowed_keys(data: Any, path: Path_, instance: dict[str, Any]) -> set[str] | None:
    """Keys a mapping at ``path`` may hold (for unknown-key suggestions)."""
    if len(path) == 2 and path[0] == "components":
        if instance.get("type") == "datasets":
            keys = set(sch.common_fields())
            provider = instance.get("provider")
            method = instance.get("method")
            if provider not in (None, *sch.providers()) or method not in (None, *sch.methods()):
                return None  # the bad provider or method is the error to report
            if isinstance(provider, str):
                keys |= set(sch.loader_fields(provider))
            if isinstance(method, str):
                keys |= set(sch.operation_fields(method))
            return keys
        task = instance.get("task", tasks.DEFAULT)
        if task not in tasks.names():
            return None  # the bad task is the error to report
        return set(sch.trainer_fields(task))
    return set()


class _Reporter:
    def __init__(self, doc: Document, diags: Diagnostics) -> None:
        self.doc = doc
        self.diags = diags

    def unknown_keys(self, path: Path_, instance: dict[str, Any], allowed: set[str]) -> None:
        data = self.doc.data
        for key in instance:
            if key in allowed:
                continue
            msg = f"unknown key '{key}'{where(data, path + (key,))}"
            other = self._belongs_elsewhere(path, instance, key)
            # another task's key: saying so beats a near miss
            hint = other if "applies to task" in other else did_you_mean(key, allowed) or other
            self.diags.error(
                "unknown-key",
                msg,
                path + (key,),
                self.doc.kpos(path + (key,)),
                suggestion=hint or None,
            )

    def _belongs_elsewhere(self, path: Path_, instance: dict[str, Any], key: str) -> str:
        if not (len(path) == 2 and path[0] == "components"):
            return ""
        if instance.get("type") == "datasets":
            if key in sch.trainer_fields():
                return f"'{key}' is a model-trainer key; this component is type: datasets"
            for provider in sch.providers():
                if key in sch.loader_fields(provider):
                    return f"'{key}' belongs to a provider: {provider} loader"
            for method in sch.methods():
                if key in sch.operation_fields(method):
                    return f"'{key}' belongs to method: {method}"
        elif instance.get("type") == "model-trainer":
            owners = tasks.holders(key)
            if owners:
                task = instance.get("task", tasks.DEFAULT)
                return f"'{key}' applies to task: {', '.join(owners)}, not {task}"
            every = set(sch.common_fields())
            for m in sch.methods():
                every |= set(sch.operation_fields(m))
            for p in sch.providers():
                every |= set(sch.loader_fields(p))
            if key in every:
                return f"'{key}' is a datasets key; this component is type: model-trainer"
        return ""


def check_schema(doc: Document, diags: Diagnostics) -> None:
    """Validate against the JSON Schema; report each problem once, where it is."""
    from mccompile.frontend.fastschema import is_valid

    _non_finite(doc, diags, doc.data, ())
    if is_valid(sch.schema(), doc.data):  # sure it is valid: no need to import jsonschema
        return
    validator = strict_validator()
    rep = _Reporter(doc, diags)
    for error in validator.iter_errors(doc.data):
        _report(rep, error)


def strict_validator() -> Any:
    """jsonschema's draft 2020-12 validator with mccompile's numbers: an integer is written
    as one (4.0 is a float in Python, and the program would get one), and no number is
    ``.nan`` or ``.inf``."""
    from jsonschema import Draft202012Validator, validators

    def integer(_: Any, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def number(_: Any, value: Any) -> bool:
        finite = not isinstance(value, float) or math.isfinite(value)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and finite

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": integer, "number": number}
    )
    extend: Any = validators.extend
    return extend(Draft202012Validator, type_checker=checker)(sch.schema())


def _non_finite(doc: Document, diags: Diagnostics, value: Any, path: Path_) -> None:
    """``.nan`` and ``.inf`` are errors wherever they are written (no setting takes them)."""
    if isinstance(value, float) and not math.isfinite(value):
        name = f"'{path[-1]}'" if path and isinstance(path[-1], str) else "this value"
        diags.error(
            "not-finite",
            f"{name}{where(doc.data, path)} must be a finite number, got {value!r}",
            path,
            doc.pos(path),
        )
        doc.reported.add(path)  # the schema check stays quiet about it
    elif isinstance(value, dict):
        for key, item in value.items():
            _non_finite(doc, diags, item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _non_finite(doc, diags, item, (*path, i))


def _report(rep: _Reporter, error: Any) -> None:
    doc = rep.doc
    data = doc.data
    path: Path_ = tuple(error.absolute_path)
    if doc.was_reported(path):
        return
    kind = error.validator
    instance = error.instance
    ctx = where(data, path)
    name = f"'{path[-1]}'" if path and isinstance(path[-1], str) else "this value"
    pos = doc.pos(path)
    if kind in ("additionalProperties", "unevaluatedProperties"):
        allowed = set(error.schema.get("properties", {}))
        if kind == "unevaluatedProperties" or not allowed:
            extra = _allowed_keys(data, path, instance)
            if extra is None:
                return
            allowed |= extra
        rep.unknown_keys(path, instance, allowed)
        return
    if kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        for key in missing:
            rep.diags.error("missing-key", f"missing required key '{key}'{ctx}", path, pos)
        return
    if (
        kind == "enum"
        and path
        and path[-1] == "type"
        and len(path) == 3
        and path[0] == "components"
    ):
        rep.diags.error(
            "unsupported",
            f"component type '{instance}' is not supported by mccompile"
            f" (supported: datasets, model-trainer){ctx}",
            path,
            pos,
        )
        return
    if kind == "const" and path and path[-1] == "type" and "jobs" in path:
        rep.diags.error(
            "unsupported",
            f"job type '{instance}' is not supported by mccompile (only action jobs are){ctx}",
            path,
            pos,
        )
        return
    if kind == "not":
        rep.diags.error(
            "provider-and-method",
            f"component{ctx.replace(' in component', '')} has both 'provider' (a loader) and"
            " 'method' (an operation); a datasets component is one or the other",
            (*path, "method"),
            doc.kpos((*path, "method")),
        )
        return
    if kind in ("anyOf", "oneOf"):
        _report_alternatives(rep, error, path, name, ctx, pos)
        return
    if kind == "enum":
        choices = [str(v) for v in error.validator_value if v is not None]
        hint = _meant(data, path, instance, choices)
        rep.diags.error(
            "enum",
            f"{name}{ctx} must be one of {', '.join(choices)}, got {_describe(instance)}",
            path,
            pos,
            suggestion=hint,
        )
        return
    if kind == "const":
        rep.diags.error(
            "enum",
            f"{name}{ctx} must be '{error.validator_value}', got {_describe(instance)}",
            path,
            pos,
        )
        return
    if kind == "type":
        expected = error.validator_value
        words = [
            _TYPE_WORDS.get(t, t) for t in ([expected] if isinstance(expected, str) else expected)
        ]
        rep.diags.error(
            "type",
            f"{name}{ctx} must be {' or '.join(words)}, got {_describe(instance)}",
            path,
            pos,
        )
        return
    if kind in _BOUNDS:
        rep.diags.error(
            "range",
            f"{name}{ctx} must be {_BOUNDS[kind]} {error.validator_value}, got {instance!r}",
            path,
            pos,
        )
        return
    if kind == "minItems":
        need = error.validator_value
        what = "must not be empty" if need == 1 else f"needs at least {need} items"
        rep.diags.error("empty", f"{name}{ctx} {what}", path, pos)
        return
    if kind == "uniqueItems":
        rep.diags.error("duplicate", f"{name}{ctx} lists an item twice", path, pos)
        return
    if kind == "pattern":
        rep.diags.error(
            "bad-id",
            f"id '{instance}' must start with a letter or '_' and hold only letters, digits,"
            " '_' and '-'",
            path,
            pos,
        )
        return
    rep.diags.error("schema", f"{name}{ctx}: {error.message}", path, pos)


_YAML11_BOOLS = ("yes", "no", "on", "off", "y", "n")


def _branch(error: Any) -> int:
    return int(error.relative_schema_path[0]) if error.relative_schema_path else -1


def _report_alternatives(
    rep: _Reporter, error: Any, path: Path_, name: str, ctx: str, pos: Any
) -> None:
    """anyOf / oneOf: report inside the alternative the value was meant for."""
    instance = error.instance
    if isinstance(instance, str) and "${" in instance:
        return  # a malformed expression: the resolver reports it, with the reason
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(_branch(sub), []).append(sub)
    alternatives = error.validator_value

    def mismatch(subs: list[Any]) -> bool:
        # the value is not of this alternative's kind at all
        return any(
            not s.relative_path
            and (s.validator in ("type", "required", "$ref") or (s.validator in ("enum", "const")))
            for s in subs
        )

    meant = [
        i
        for i, subs in sorted(branches.items())
        if not mismatch(subs) and alternatives[i] != {"$ref": "#/$defs/expression"}
    ]
    if meant:
        for sub in branches[meant[0]]:
            _report(rep, sub)
        return
    words: list[str] = []
    choices: list[str] = []
    for alt in alternatives:
        for word in _expected(alt):
            if word not in words:
                words.append(word)
        choices += [str(v) for v in alt.get("enum", []) if v is not None]
        if isinstance(alt.get("const"), str):
            choices.append(alt["const"])
    hint = _meant(rep.doc.data, path, instance, choices) if choices else None
    if not hint and "true or false" in words and str(instance).lower() in _YAML11_BOOLS:
        hint = "YAML 1.2 booleans are true and false only"
    listed = ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1]
    rep.diags.error(
        "type",
        f"{name}{ctx} must be {listed}, got {_describe(instance)}",
        path,
        pos,
        suggestion=hint,
    )


# values that name a combination of settings rather than one choice of a key
_COMBINED = {
    ("peft_adapter", "qlora"): "QLoRA is peft_adapter: lora with quantization: nf4",
}


def _meant(data: Any, path: Path_, instance: Any, choices: list[str]) -> str | None:
    """What an enum value that is not a choice probably meant."""
    if not isinstance(instance, str):
        return None
    key = path[-1] if path else None
    combined = _COMBINED.get((str(key), instance.lower().replace("-", "")))
    if combined and _with_quantization(data, path):
        combined = None  # the quantization is there already: only the adapter is wrong
    return combined or did_you_mean(instance, choices)


def _with_quantization(data: Any, path: Path_) -> bool:
    parent = _get(data, path[:-1])
    return isinstance(parent, dict) and parent.get("quantization") is not None


_BOUNDS = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
}
