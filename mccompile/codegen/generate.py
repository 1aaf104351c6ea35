"""From the IR to the files of one workflow: the program model is built here.

Templates receive a :class:`Program` and lay out code; which format, which
optimizer package, which launch settings is decided in this module.
"""

from __future__ import annotations

from typing import Any

from mccompile import ir, tasks
from mccompile.codegen import vision as vision_program
from mccompile.codegen.conditions import compile_condition
from mccompile.codegen.program import Chat, KeepFunction, Launch, Program, Step, Train, code
from mccompile.codegen.render import comment, py, render_python, render_text
from mccompile.codegen.settings import chosen, data_format, options, settings
from mccompile.codegen.tables import (
    ATTENTION_PACKAGES,
    HELPER_IMPORTS,
    HELPER_NEEDS,
    HUB_KERNELS,
    LAUNCH_FILES,
    OPTIMIZERS,
    QUANT_TYPES,
    REQUIREMENTS,
    TORCH_DTYPES,
)
from mccompile.frontend import launchers
from mccompile.frontend import schema as sch
from mccompile.frontend.dataset_checks import streamed_jobs


def _data_steps(p: Program) -> None:
    for job in p.workflow.jobs:
        if job.kind == "train":
            continue
        if job.kind == "load":
            function = "load_hub" if job.provider == "huggingface" else "load_local"
            names = list(sch.loader_fields(job.provider or ""))
            names = [n for n in names if n not in ("provider", "trust_remote_code")]
            title = f"{job.id}: load ({job.provider}, component {job.component})"
        else:
            function = {
                "concat": "concat_datasets",
                "select": "select_" + str(ir.lit(job.fields.get("axis", ir.Lit("columns")))),
                "filter": "filter_rows",
                "map": "map_template",
                "interleave": "interleave_datasets",
                "deduplicate": "deduplicate_rows",
            }[job.method or ""]
            names = list(sch.operation_fields(job.method or ""))
            if job.method == "select":
                names = ["dataset", "columns" if function == "select_columns" else "indices"]
            title = f"{job.id}: {job.method} (component {job.component})"
        kwargs = [(name, _argument(p, name, job.fields.get(name, ir.Lit(None)))) for name in names]
        condition = job.fields.get("condition")
        if job.method == "filter" and isinstance(condition, ir.Lit):
            compiled = compile_condition(condition.value)
            keep = KeepFunction(f"keep_{job.var}", comment(compiled.text), compiled.code)
            p.keep_functions.append(keep)
            p.helpers.update(compiled.helpers)
            function = "filter_with"
            kwargs = [kwargs[0], ("keep", keep.name), ("columns", py(list(compiled.columns)))]
        if job.method == "interleave":
            kwargs.insert(1, ("names", _source_names(job.fields.get("datasets", ir.Lit(None)))))
        p.helpers.update({function, "report"})
        p.steps.append(Step(job.id, job.var, title, function, tuple(kwargs)))


def _argument(p: Program, name: str, value: ir.Value) -> str:
    """Code for one argument of a dataset step; datasets given as text are opened."""
    if name == "dataset" and not isinstance(value, ir.JobRef):
        p.helpers.add("open_dataset")
        return f"open_dataset({code(value)})"
    if name == "datasets" and isinstance(value, (ir.Seq, ir.Lit)):
        items = value.items if isinstance(value, ir.Seq) else tuple(ir.Lit(v) for v in value.value)
        opened = [
            code(v) if isinstance(v, ir.JobRef) else f"open_dataset({code(v)})" for v in items
        ]
        if any(not isinstance(v, ir.JobRef) for v in items):
            p.helpers.add("open_dataset")
        return "[" + ", ".join(opened) + "]"
    return code(value)


def _source_names(value: ir.Value) -> str:
    """Code for the names the program gives an interleave's datasets when it prints their shares."""
    if isinstance(value, ir.Seq):
        items: tuple[ir.Value, ...] = value.items
    elif isinstance(value, ir.Lit) and isinstance(value.value, list):
        items = tuple(ir.Lit(v) for v in value.value)
    else:  # the whole list comes from an option: numbered at run time
        return f'[f"dataset {{n}}" for n in range(1, len({code(value)}) + 1)]'
    names = [
        py(v.job)
        if isinstance(v, ir.JobRef)
        else py("--" + v.name.replace("_", "-"))
        if isinstance(v, ir.InputRef)
        else code(v)
        for v in items
    ]
    return "[" + ", ".join(names) + "]"


def _dataset_source(p: Program, value: ir.Value | None) -> str | None:
    if value is None or (isinstance(value, ir.Lit) and value.value is None):
        return None
    if isinstance(value, ir.JobRef):
        return code(value)
    p.helpers.add("open_dataset")
    return f"open_dataset({code(value)})"


def _requirements(p: Program, job: ir.Job | None) -> None:
    if job is None:  # prepare.py needs the datasets library only
        p.requirements = [REQUIREMENTS["datasets"]]
        return
    names = ["torch", "transformers", "datasets", "accelerate"]
    if job is not None:
        v = p.value
        names.extend(tasks.get(v.get("task")).REQUIREMENTS)
        if "lora_r" in job.fields:
            names.append("peft")
        optim = OPTIMIZERS.get(str(ir.lit(job.fields.get("optimizer", ir.Lit("")))), ("", None))[1]
        if chosen(job, "plot_loss"):
            names.append("matplotlib")
        if v.get("use_liger_kernel"):
            names.append("liger-kernel")
        if v.get("quantization") or optim == "bitsandbytes":
            names.append("bitsandbytes")
        if optim and optim != "bitsandbytes":
            names.append(optim)
        strategy = (ir.lit(job.fields["distributed"]) or {}).get("strategy")
        if strategy == "deepspeed":
            names.append("deepspeed")
        attention = attention_package(v.get("attn_implementation"))
        if attention:
            names.append(attention[0])
        report = v.get("report_to")
        for name in [report] if isinstance(report, str) else list(report or []):
            if name != "none":
                names.append(name)
    p.requirements = [REQUIREMENTS[n] for n in dict.fromkeys(names)]
    extra = getattr(tasks.of_job(job), "extra_requirements", None)
    if extra is not None:  # a task's packages chosen by its settings (pinned by the task)
        p.requirements += [req for req in extra(job) if req not in p.requirements]


def attention_package(attn: Any) -> tuple[str, str] | None:
    """(requirement, module) an attention kernel needs, or None for torch's own."""
    if not isinstance(attn, str):
        return None
    if "/" in attn:
        return HUB_KERNELS
    return ATTENTION_PACKAGES.get(attn)


def precision_choice(v: dict[str, Any]) -> str:
    """fp16, bf16, auto or fp32 as the config asks; runtime when an option or variable decides."""
    fp16, bf16 = v.get("fp16"), v.get("bf16")
    if fp16 is None or bf16 is None:
        return "runtime"
    if fp16 is True:
        return "fp16"
    if bf16 is True:
        return "bf16"
    return "auto" if bf16 == "auto" else "fp32"





def _train(p: Program, job: ir.Job) -> None:
    f = job.fields
    v = p.value
    module = tasks.of_job(job)
    fmt = data_format(job)
    quant = v.get("quantization")
    precision = precision_choice(v)
    compute = v.get("bnb_4bit_compute_dtype")
    optim = str(v.get("optimizer", "adamw_torch"))
    report = v.get("report_to")
    model = f.get("model")
    p.train = Train(
        task=module.NAME,
        format=fmt,
        lora="lora_r" in f,
        quantization=quant,
        quant_type=QUANT_TYPES.get(str(quant)),
        compute_dtype=TORCH_DTYPES[compute] if compute else None,
        precision=precision,
        attention=attention_package(v.get("attn_implementation")),
        attention_runtime=_runtime(p, "attn_implementation"),
        tf32=v.get("tf32") is not None or _runtime(p, "tf32"),
        model_option=isinstance(model, ir.Lit),  # an input may not be named model
        model=model.value if isinstance(model, ir.Lit) else None,
        optim=optim,
        train_source=_dataset_source(p, f.get("dataset")),
        eval_source=_dataset_source(p, f.get("eval_dataset")),
        validation_split="validation_split" in job.explicit,
        tensorboard=report == "tensorboard"
        or (isinstance(report, list) and "tensorboard" in report),
        resume_default=v.get("resume_from_checkpoint"),
        # transformers reads a float below 1 in warmup_steps as a share of all steps
        warmup=p.ref["warmup_ratio"] if "warmup_ratio" in job.explicit else p.ref["warmup_steps"],
        merge_adapter=bool(v.get("merge_adapter")),
        output_dir=v.get("output_dir"),
        save_steps=v.get("save_steps"),
        **_run_extras(job),
    )
    if fmt == "vision":  # images beside the chat turns: the vision-language program
        p.task = vision_program.program_model(p, job, code)
    else:
        p.task = module.program_model(job, v, p.ref)




def _run_extras(job: ir.Job) -> dict[str, Any]:
    """The code a run needs beyond training: per-epoch schedules, the loss plot, the hub push."""

    def literal(name: str, default: Any = None) -> Any:
        return ir.lit(job.fields[name]) if name in job.fields else default

    return {
        "evals_per_epoch": chosen(job, "evals_per_epoch"),
        "saves_per_epoch": chosen(job, "saves_per_epoch"),
        "plot_loss": chosen(job, "plot_loss"),
        "push": chosen(job, "push_to_hub"),
        "evals_per_epoch_count": literal("evals_per_epoch"),
        "saves_per_epoch_count": literal("saves_per_epoch"),
        "save_strategy": literal("save_strategy", "steps"),
        "hub_model_id": literal("hub_model_id"),
        "plot_always": literal("plot_loss") is True,
        "push_always": literal("push_to_hub") is True,
    }


def _runtime(p: Program, name: str) -> bool:
    """Whether an option or an environment variable sets this setting at start-up."""
    return p.ref.get(name) in {s.const for s in p.runtime}


def _launch(p: Program, job: ir.Job | None) -> None:
    dist = dict(ir.lit(job.fields["distributed"]) or {}) if job else {}
    strategy = dist.get("strategy", "auto")
    procs = dist.get("num_processes", "auto")
    p.launch = Launch(
        strategy=strategy,
        num_processes=procs,
        num_machines=dist.get("num_machines", 1),
        zero_stage=dist.get("zero_stage"),
        offload=bool(dist.get("offload")),
        # with bf16: auto the program decides, and TrainingArguments' bf16 / fp16 override this
        precision={"fp16": "fp16", "bf16": "bf16"}.get(p.train.precision if p.train else "", "no"),
        state_dict_type=dist.get("state_dict_type", "sharded"),
        distributed_type={
            # auto: one process here; launch.sh adds --multi_gpu where it starts more
            "auto": "NO",
            "none": "NO",
            "ddp": "MULTI_GPU",
            "fsdp": "FSDP",
            "deepspeed": "DEEPSPEED",
        }[strategy],
        launchers=launchers.settings(dist, p.workflow.id),
    )


def build_program(config: ir.Config, wf: ir.Workflow) -> Program:
    p = Program(config=config, workflow=wf)
    trainer = wf.trainer
    p.options = options(wf, trainer)
    p.env = list(wf.env)
    _data_steps(p)
    if trainer is not None:
        settings(p, trainer)
        _train(p, trainer)
        p.chat = Chat(
            template_kind=str(p.value.get("template_kind", "tokenizer")),
            template_kwargs=bool(p.value.get("template_kwargs")),
            special_tokens=bool(p.value.get("special_tokens")),
            added_tokens=bool(p.value.get("added_tokens")),
            final_turn=bool(p.value.get("final_turn_column")),
        )
    _requirements(p, trainer)
    _launch(p, trainer)
    if trainer is not None:
        p.helpers |= {"size", "first_rows", "progress"}
    for helper in list(p.helpers):
        p.helpers |= HELPER_NEEDS.get(helper, set())
    p.streaming = bool(streamed_jobs(wf))
    if trainer is not None:
        p.resources = _resources(trainer)
    needed = {"argparse", "json", "sys"}
    if trainer is not None:
        needed |= {"datetime", "os", "signal"}
        needed.update(tasks.of_job(trainer).IMPORTS)
        if p.train and (p.train.evals_per_epoch or p.train.saves_per_epoch):
            needed.add("math")
    for helper in p.helpers:
        needed.update(HELPER_IMPORTS.get(helper, []))
    if p.env:
        needed.add("os")
    p.imports = sorted(needed)
    return p


def _resources(job: ir.Job) -> list[str]:
    """The resource plan for the README, from the built-in table only (no file is read)."""
    from mccompile.plan.resources import format_markdown, plan_trainer

    return format_markdown(plan_trainer(job, table_only=True))


def program_template(wf: ir.Workflow, p: Program) -> str:
    """The template of the workflow's program: one per program shape."""
    if wf.trainer is None:
        return "prepare.py.jinja"
    module = tasks.of_job(wf.trainer)
    shape = getattr(module, "template", None)  # a task whose program takes more than one shape
    return str(shape(wf.trainer) if shape is not None else module.TEMPLATE)


def generate_workflow(config: ir.Config, wf: ir.Workflow) -> dict[str, str]:
    p = build_program(config, wf)
    program = wf.program
    template = program_template(wf, p)
    files = {
        program: render_python(template, p=p),
        "accelerate_config.yaml": render_text("accelerate_config.yaml.jinja", p=p),
        "launch.sh": render_text("launch.sh.jinja", p=p),
        "requirements.txt": render_text("requirements.txt.jinja", p=p),
        "README.md": render_text("README.md.jinja", p=p),
    }
    for engine, name in LAUNCH_FILES.items():  # only those the config asks for
        if p.launch and engine in p.launch.launchers:
            files[name] = render_text(f"{name}.jinja", p=p)
    files.update(bundled_files(config, wf))
    return files


def bundled_files(config: ir.Config, wf: ir.Workflow) -> dict[str, str]:
    """Files a task copies beside the program (GRPO's reward files), by name."""
    bundle = getattr(tasks.of_job(wf.trainer), "bundle_files", None) if wf.trainer else None
    return dict(bundle(wf.trainer, config.root)) if bundle is not None else {}
