"""``mccompile plan``: what a config resolves to, every default filled in."""

from __future__ import annotations

from mccompile import ir


def show(value: ir.Value) -> str:
    if isinstance(value, ir.Lit):
        return repr(value.value)
    if isinstance(value, ir.InputRef):
        return f"--{value.name.replace('_', '-')}"
    if isinstance(value, ir.JobRef):
        return f"output of job '{value.job}'"
    if isinstance(value, ir.EnvRef):
        tail = f" (default {value.default!r})" if value.default is not None else ""
        return f"${value.name} from the environment{tail}"
    if isinstance(value, ir.Seq):
        return "[" + ", ".join(show(v) for v in value.items) + "]"
    return " + ".join(repr(p) if isinstance(p, str) else show(p) for p in value.parts)


def describe_job(job: ir.Job) -> str:
    if job.kind == "load":
        return f"datasets loader, provider {job.provider}"
    if job.kind == "op":
        return f"datasets {job.method}"
    task = ir.lit(job.fields.get("task", ir.Lit("sft")))
    return f"model-trainer, task {task}"


def render_resources(config: ir.Config, gpu_memory: tuple[str, int] | None = None) -> list[str]:
    """The resource plan of every trainer (parameters, batch, tokens, GPU memory)."""
    from mccompile.plan.resources import format_plan, plan_config

    lines: list[str] = []
    for plan in plan_config(config, gpu_memory):
        lines.append("")
        lines += format_plan(plan, indent="")
    return lines


def tokens_note(job: ir.Job) -> str | None:
    """What added or special tokens do to the model, said in the plan."""
    tokens = [
        k for k in ("added_tokens", "special_tokens") if ir.lit(job.fields.get(k, ir.Lit(None)))
    ]
    if job.kind != "train" or not tokens:
        return None
    note = f"# {' and '.join(tokens)}: tokens the vocabulary lacks grow the embeddings"
    if "lora_r" in job.fields:
        note += (
            "; with LoRA the embedding and output layers then train in full and are saved"
            " with the adapter (modules_to_save)"
        )
    return note


def bundled(config: ir.Config, wf: ir.Workflow) -> list[tuple[str, str]]:
    """Files copied into the bundle beside the program, with their sha256."""
    import hashlib

    from mccompile.codegen.generate import bundled_files

    files = bundled_files(config, wf)
    return [(n, hashlib.sha256(t.encode("utf-8")).hexdigest()) for n, t in sorted(files.items())]


def render_plan(config: ir.Config, gpu_memory: tuple[str, int] | None = None) -> str:
    lines: list[str] = [f"config {config.file} (sha256 {config.sha256[:12]})"]
    for wf in config.workflows:
        lines.append("")
        mark = ", default" if wf.default else ""
        lines.append(f"workflow {wf.id}: {wf.id}/{wf.program}{mark}")
        if wf.title:
            lines.append(f"  title: {wf.title}")
        lines.append("  jobs in run order:")
        for n, job in enumerate(wf.jobs, 1):
            after = f"  (after {', '.join(job.depends_on)})" if job.depends_on else ""
            lines.append(
                f"    {n}. {job.id}: {describe_job(job)}, component {job.component}{after}"
            )
            width = max((len(k) for k in job.fields), default=0)
            for key, value in job.fields.items():
                origin = "" if key in job.explicit else "  # default"
                if key == "distributed" and isinstance(value, ir.Lit):
                    for dk, dv in value.value.items():
                        lines.append(f"         distributed.{dk} = {dv!r}")
                    continue
                lines.append(f"         {key.ljust(width)} = {show(value)}{origin}")
            note = tokens_note(job)
            if note:
                lines.append(f"         {note}")
        for name, digest in bundled(config, wf):
            lines.append(f"  bundles {wf.id}/{name} (sha256 {digest[:12]})")
        if wf.result and not wf.trainer:
            lines.append(f"  saves the dataset of job '{wf.result}' with save_to_disk")
        lines.append(f"  options of {wf.program}:")
        for inp in wf.inputs:
            need = "required" if inp.required else f"default {inp.default!r}"
            lines.append(f"    {inp.option} ({inp.type}, {need})")
        if wf.trainer is None:
            lines.append("    --output-dir")
        else:
            model = wf.trainer.fields.get("model")
            own = f"--model (default {model.value!r}), " if isinstance(model, ir.Lit) else ""
            lines.append(f"    {own}--output-dir, --max-steps, --resume, --dry-run")
        for env in wf.env:
            tail = "required" if env.default is None else f"default {env.default!r}"
            lines.append(f"  environment: ${env.name} ({tail})")
    lines += render_resources(config, gpu_memory)
    return "\n".join(lines) + "\n"
