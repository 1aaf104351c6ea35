"""The settings block at the top of a program, and the program's options.

Every trainer field the program reads becomes a named constant with its default and a comment
(its schema description); a field set at run time (an option, an environment variable) is
read at start-up instead.
"""

from __future__ import annotations

from typing import Any

from mccompile import ir, tasks
from mccompile.codegen.program import Option, Program, Setting, code
from mccompile.codegen.render import black_literal, comment, py, text_block
from mccompile.codegen.tables import (
    AUTO_NUM_PROC,
    OPTIMIZERS,
    READ_WHEN,
    SCHEDULER_KWARGS,
    SETTING_GROUPS,
)
from mccompile.frontend import schema as sch
from mccompile.frontend.chat import TEMPLATE_KWARGS, merged_fields, merged_roles, resolve_template
from mccompile.tasks.fields import CHAT_FIELDS

_ARG_TYPES = {
    "integer": "int",
    "number": "float",
    "boolean": "parse_bool",
    "list": "json.loads",
    "object": "json.loads",
    "json": "json.loads",
    "string": None,
    "dataset": None,
}


def options(wf: ir.Workflow, trainer: ir.Job | None) -> list[Option]:
    out: list[Option] = []
    for inp in wf.inputs:
        flags = (inp.option,) if "_" not in inp.name else (inp.option, "--" + inp.name)
        metavar = inp.name.upper().replace("-", "_")
        default = py(inp.default if not isinstance(inp.default, (list, dict)) else None)
        if inp.type in ("list", "object", "json") and inp.default is not None:
            default = py(_json(inp.default))
        out.append(
            Option(
                flags,
                inp.dest,
                _ARG_TYPES.get(inp.type),
                default,
                inp.required,
                comment(inp.help),
                metavar,
            )
        )
    return out


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def settings(p: Program, job: ir.Job) -> None:
    task = tasks.of_job(job)
    described = sch.trainer_fields(task.NAME)
    p.value["task"] = ir.lit(job.fields["task"])
    fmt = data_format(job)
    for group, names in setting_groups(task):
        items: list[Setting] = []
        for name in names:
            if name not in job.fields:
                continue
            value = job.fields[name]
            const = name.upper()
            note = comment(described.get(name, {}).get("description", ""))
            if name == "lr_scheduler_kwargs" and not ir.lit(value):
                sched = ir.lit(job.fields["lr_scheduler_type"])
                value = ir.Lit(SCHEDULER_KWARGS.get(str(sched), {}))
            if name in task.hidden(fmt) and name not in job.explicit:
                continue
            if name == "warmup_ratio" and name not in job.explicit:
                continue
            if name in READ_WHEN and not chosen(job, READ_WHEN[name]) and name not in job.explicit:
                continue
            if name == "optimizer" and isinstance(value, ir.Lit):
                picked = str(value.value)
                value = ir.Lit(OPTIMIZERS[picked][0])
                note = f"transformers' name for the config's {picked!r}" + (
                    f" (needs {OPTIMIZERS[picked][1]})" if OPTIMIZERS[picked][1] else ""
                )
            if name in CHAT_FIELDS:
                written = _chat_settings(p, job, name, note)
                items.extend(written)
                if written:
                    p.ref[name] = const
                continue
            p.ref[name] = const
            if name == "dataset_num_proc" and ir.lit(value) == "auto":
                items.append(Setting(const, AUTO_NUM_PROC, note))
                p.value[name] = "auto"
                continue
            if isinstance(value, ir.Lit):
                items.append(Setting(const, py(value.value), note, black_literal(value.value)))
                p.value[name] = value.value
            else:
                p.runtime.append(Setting(const, code(value), f"{note} From {_origin(value)}."))
                p.value[name] = None
        if items:
            p.groups.append((group, items))


def setting_groups(task: Any) -> list[tuple[str, list[str]]]:
    """The settings block's groups: the common ones, with the task's keys in them.

    A task's group replaces the common group of that name (it lists every key of that group
    its programs read); its other groups follow Data.
    """
    own: dict[str, list[str]] = task.SETTING_GROUPS
    out = [(title, own.get(title, names)) for title, names in SETTING_GROUPS]
    extra = [(title, names) for title, names in own.items() if title not in dict(SETTING_GROUPS)]
    at = next(i for i, (title, _) in enumerate(out) if title == "Data") + 1
    return out[:at] + extra + out[at:]


def _chat_settings(p: Program, job: ir.Job, name: str, note: str) -> list[Setting]:
    """The settings of one chat key: the template as its text; roles and fields in full."""
    value = ir.lit(job.fields[name])
    p.value[name] = value
    if name == "chat_template":
        template = resolve_template(str(value), p.config.files)
        p.value["template_kind"] = template.kind
        if template.kind == "tokenizer":
            return []
        if template.kind == "plain":
            return [Setting("CHAT_TEMPLATE", "None", "plain: the PLAIN_FORMAT headers below")]
        settings = [Setting("CHAT_TEMPLATE", text_block(template.text or ""), template.source)]
        kwargs = TEMPLATE_KWARGS.get(template.value) if template.kind == "builtin" else None
        if kwargs:
            p.value["template_kwargs"] = True
            settings.append(
                Setting(
                    "CHAT_TEMPLATE_KWARGS",
                    py(kwargs),
                    "passed to apply_chat_template: the empty thinking block is part of the prompt",
                )
            )
        return settings
    if name in ("special_tokens", "added_tokens", "final_turn_column") and name not in job.explicit:
        return []
    if name == "roles":
        value = merged_roles(value)
        note = "ShareGPT spellings of each role (function_call turns become tool calls)"
    elif name == "message_fields":
        value = merged_fields(value)
        note = "the keys of a ShareGPT turn"
    p.value[name] = value
    return [Setting(name.upper(), py(value), note, black_literal(value))]


def _origin(value: ir.Value) -> str:
    refs = ir.refs(value)
    names = [
        f"--{r.name.replace('_', '-')}" if isinstance(r, ir.InputRef) else f"${r.name}"
        for r in refs
        if isinstance(r, (ir.InputRef, ir.EnvRef))
    ]
    return " and ".join(names) or "the workflow"


def data_format(job: ir.Job) -> str:
    """The data layout of the trainer's task (sft: text, prompt_response or auto)."""
    return str(tasks.of_job(job).data_format(job))


def chosen(job: ir.Job, name: str) -> bool:
    """Whether the config turns ``name`` on: set to a value, or to one known only at run time."""
    value = job.fields.get(name, ir.Lit(None))
    return not isinstance(value, ir.Lit) or value.value not in (None, False)
