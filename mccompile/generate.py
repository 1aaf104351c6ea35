"""From the IR to the files of one workflow: every code decision is made here.

Templates receive a :class:`Program` and lay out code; which format, which
optimizer package, which launch settings is decided in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mccompile import __version__, ir, tasks
from mccompile import schema as sch
from mccompile.checks import streamed_jobs
from mccompile.conditions import compile_condition
from mccompile.fields import BNB4_FIELDS, LORA_FIELDS
from mccompile.render import comment, py, render_python, render_text

# optimizer in the config -> (transformers' optim name, extra requirement or None)
OPTIMIZERS: dict[str, tuple[str, str | None]] = {
    "adamw_torch": ("adamw_torch", None),
    "adamw_torch_fused": ("adamw_torch_fused", None),
    "adamw_8bit": ("adamw_8bit", "bitsandbytes"),
    "adamw_bnb_8bit": ("adamw_bnb_8bit", "bitsandbytes"),
    "adafactor": ("adafactor", None),
    "lomo": ("lomo", "lomo-optim"),
    "galore_adamw": ("galore_adamw", "galore-torch"),
    "galore_adamw_8bit": ("galore_adamw_8bit", "galore-torch"),
    "grokadamw": ("grokadamw", "grokadamw"),
    "stableadamw": ("stable_adamw", "torch-optimi"),
    "schedule_free_radamw": ("schedule_free_radam", "schedulefree"),
    "sgd": ("sgd", None),
    "adagrad": ("adagrad", None),
    "rmsprop": ("rmsprop", None),
}
# tested version ranges of what a program may need
REQUIREMENTS: dict[str, str] = {
    "torch": "torch>=2.4",
    "transformers": "transformers>=5.24,<6",
    "datasets": "datasets>=5.2,<6",
    "accelerate": "accelerate>=1.15,<2",
    "trl": "trl>=1.16,<1.17",
    "peft": "peft>=0.21.2,<0.22",
    "bitsandbytes": "bitsandbytes>=0.50.2,<0.51",
    "tensorboard": "tensorboard>=2.21",
    "lomo-optim": "lomo-optim>=0.1.1",
    "galore-torch": "galore-torch>=1.0",
    "grokadamw": "grokadamw>=0.1.2",
    "torch-optimi": "torch-optimi>=0.2.1",
    "schedulefree": "schedulefree>=1.4",
    "deepspeed": "deepspeed>=0.16",
    "liger-kernel": "liger-kernel>=0.6",
    "wandb": "wandb>=0.18",
    "mlflow": "mlflow>=2.10",
    "comet_ml": "comet_ml>=3.40",
    "clearml": "clearml>=1.16",
    "trackio": "trackio>=0.2",
    "pandas": "pandas>=2.0",
}
SCHEDULER_KWARGS: dict[str, dict[str, Any]] = {
    "cosine_with_min_lr": {"min_lr_rate": 0.1},
}
QUANT_TYPES = {"nf4": "nf4", "int4": "fp4"}
TORCH_DTYPES = {
    "float32": "torch.float32",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
}
# helpers that other helpers call
HELPER_NEEDS = {
    "report": {"size", "first_rows"},
    "filter_rows": {"first_rows", "progress"},
    "filter_with": {"first_rows", "progress"},
    "map_template": {"first_rows", "progress"},
}
# standard-library modules each dataset helper needs
HELPER_IMPORTS = {
    "open_dataset": ["os"],
    "load_hub": ["os"],
    "load_local": ["os"],
    "filter_rows": ["re"],
    "re": ["re"],
    "map_template": ["string"],
}

# trainer fields shown in the settings block: (group, field, constant)
SETTING_GROUPS: list[tuple[str, list[str]]] = [
    ("Model", ["model", "model_revision", "trust_remote_code", "attn_implementation"]),
    ("Data", ["max_seq_length", "validation_split"]),  # a task lists its own keys here
    ("LoRA", list(LORA_FIELDS)),
    ("Quantization", ["quantization", *BNB4_FIELDS]),
    (
        "Optimization",
        [
            "learning_rate",
            "num_epochs",
            "max_steps",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "optimizer",
            "lr_scheduler_type",
            "lr_scheduler_kwargs",
            "warmup_steps",
            "warmup_ratio",
            "weight_decay",
            "max_grad_norm",
            "gradient_checkpointing",
            "fp16",
            "bf16",
            "seed",
        ],
    ),
    (
        "Speed",
        [
            "group_by_length",
            "use_liger_kernel",
            "torch_compile",
            "dataloader_num_workers",
        ],
    ),
    (
        "Logging, evaluation and checkpoints",
        [
            "logging_steps",
            "eval_steps",
            "save_steps",
            "save_total_limit",
            "output_dir",
            "resume_from_checkpoint",
            "report_to",
        ],
    ),
]


@dataclass(frozen=True)
class Setting:
    const: str
    code: str
    note: str

    @property
    def inline(self) -> bool:
        """Short enough for the comment to stand beside the value."""
        return len(f"{self.const} = {self.code}  # {self.note}") <= 100


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    dest: str
    type: str | None
    default: str
    required: bool
    help: str
    metavar: str


@dataclass(frozen=True)
class KeepFunction:
    """A filter condition compiled to ``def name(row): return code``."""

    name: str
    doc: str
    code: str


@dataclass(frozen=True)
class Step:
    """One dataset job as a call in main()."""

    id: str
    var: str
    title: str
    function: str
    kwargs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Train:
    """The trainer's decisions every task's program reads (``p.train``, ``t`` in templates)."""

    task: str
    format: str  # the data layout: the task decides (sft: text, prompt_response, auto)
    lora: bool
    quantization: str | None
    quant_type: str | None  # bitsandbytes' name of a 4-bit type
    compute_dtype: str  # torch.float32 and the like
    precision: str  # bf16, fp16 or no
    optim: str
    train_source: str | None  # code for the training data
    eval_source: str | None
    validation_split: bool
    tensorboard: bool
    resume_default: Any  # resume_from_checkpoint: None, True or a folder
    warmup: str  # the constant that goes to warmup_steps
    merge_adapter: bool
    output_dir: Any  # the literal values, for the README (None when set at run time)
    save_steps: Any


@dataclass(frozen=True)
class Launch:
    """accelerate_config.yaml and launch.sh (``p.launch``)."""

    strategy: str
    num_processes: Any  # a count or "auto"
    num_machines: int
    zero_stage: int | None
    offload: bool
    precision: str
    distributed_type: str


@dataclass
class Program:
    """What a workflow's templates read.

    ``train`` and ``task`` (the task's own model, from its module in mccompile/tasks) are
    None for a dataset program. ``value`` holds the literal value of each setting, for the
    decisions made here; templates read the typed models instead.
    """

    config: ir.Config
    workflow: ir.Workflow
    version: str = __version__
    options: list[Option] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    groups: list[tuple[str, list[Setting]]] = field(default_factory=list)
    ref: dict[str, str] = field(default_factory=dict)
    value: dict[str, Any] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)
    env: list[ir.EnvRef] = field(default_factory=list)
    train: Train | None = None
    task: Any = None
    launch: Launch | None = None
    imports: list[str] = field(default_factory=list)
    runtime: list[Setting] = field(default_factory=list)
    keep_functions: list[KeepFunction] = field(default_factory=list)
    streaming: bool = False


def code(value: ir.Value) -> str:
    """Python source for a value: literals by repr, references by name."""
    if isinstance(value, ir.Lit):
        return py(value.value)
    if isinstance(value, ir.InputRef):
        return f"args.{ir.identifier(value.name)}"
    if isinstance(value, ir.JobRef):
        return ir.identifier(value.job) + "_output"
    if isinstance(value, ir.EnvRef):
        if value.default is None:
            return f"os.environ[{py(value.name)}]"
        return f"os.environ.get({py(value.name)}, {py(value.default)})"
    if isinstance(value, ir.Seq):
        return "[" + ", ".join(code(v) for v in value.items) + "]"
    pieces = [py(p) if isinstance(p, str) else f"str({code(p)})" for p in value.parts]
    return " + ".join(pieces)


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


def _options(wf: ir.Workflow, trainer: ir.Job | None) -> list[Option]:
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


def _dataset_source(p: Program, value: ir.Value | None) -> str | None:
    if value is None or (isinstance(value, ir.Lit) and value.value is None):
        return None
    if isinstance(value, ir.JobRef):
        return code(value)
    p.helpers.add("open_dataset")
    return f"open_dataset({code(value)})"


def _settings(p: Program, job: ir.Job) -> None:
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
            if name == "optimizer" and isinstance(value, ir.Lit):
                chosen = str(value.value)
                value = ir.Lit(OPTIMIZERS[chosen][0])
                note = f"transformers' name for the config's {chosen!r}" + (
                    f" (needs {OPTIMIZERS[chosen][1]})" if OPTIMIZERS[chosen][1] else ""
                )
            p.ref[name] = const
            if isinstance(value, ir.Lit):
                items.append(Setting(const, py(value.value), note))
                p.value[name] = value.value
            else:
                p.runtime.append(Setting(const, code(value), f"{note} From {_origin(value)}."))
                p.value[name] = None
        if items:
            p.groups.append((group, items))


def setting_groups(task: Any) -> list[tuple[str, list[str]]]:
    """The settings block's groups: the common ones, with the task's keys in them.

    A task's group replaces the common group of that name; its other groups follow Data.
    """
    own: dict[str, list[str]] = task.SETTING_GROUPS
    out = [(title, own.get(title, names)) for title, names in SETTING_GROUPS]
    extra = [(title, names) for title, names in own.items() if title not in dict(SETTING_GROUPS)]
    at = next(i for i, (title, _) in enumerate(out) if title == "Data") + 1
    return out[:at] + extra + out[at:]


def _origin(value: ir.Value) -> str:
    refs = ir.refs(value)
    names = [
        f"--{r.name.replace('_', '-')}" if isinstance(r, ir.InputRef) else f"${r.name}"
        for r in refs
        if isinstance(r, (ir.InputRef, ir.EnvRef))
    ]
    return " and ".join(names) or "the workflow"


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
        if v.get("use_liger_kernel"):
            names.append("liger-kernel")
        if v.get("quantization") or optim == "bitsandbytes":
            names.append("bitsandbytes")
        if optim and optim != "bitsandbytes":
            names.append(optim)
        strategy = (ir.lit(job.fields["distributed"]) or {}).get("strategy")
        if strategy == "deepspeed":
            names.append("deepspeed")
        report = v.get("report_to")
        for name in [report] if isinstance(report, str) else list(report or []):
            if name != "none":
                names.append(name)
    p.requirements = [REQUIREMENTS[n] for n in dict.fromkeys(names)]


def data_format(job: ir.Job) -> str:
    """The data layout of the trainer's task (sft: text, prompt_response or auto)."""
    return str(tasks.of_job(job).data_format(job))


def _train(p: Program, job: ir.Job) -> None:
    f = job.fields
    v = p.value
    module = tasks.of_job(job)
    fmt = data_format(job)
    quant = v.get("quantization")
    precision = "bf16" if v.get("bf16") else "fp16" if v.get("fp16") else "no"
    compute = v.get("bnb_4bit_compute_dtype") or {"bf16": "bfloat16", "fp16": "float16"}.get(
        precision, "float32"
    )
    optim = str(v.get("optimizer", "adamw_torch"))
    report = v.get("report_to")
    p.train = Train(
        task=module.NAME,
        format=fmt,
        lora="lora_r" in f,
        quantization=quant,
        quant_type=QUANT_TYPES.get(str(quant)),
        compute_dtype=TORCH_DTYPES[compute],
        precision=precision,
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
    )
    p.task = module.program_model(job, v, p.ref)


def _launch(p: Program, job: ir.Job | None) -> None:
    dist = dict(ir.lit(job.fields["distributed"]) or {}) if job else {}
    strategy = dist.get("strategy", "none")
    procs = dist.get("num_processes", "auto")
    p.launch = Launch(
        strategy=strategy,
        num_processes=procs,
        num_machines=dist.get("num_machines", 1),
        zero_stage=dist.get("zero_stage"),
        offload=bool(dist.get("offload")),
        precision=p.train.precision if p.train else "no",
        distributed_type={
            "none": "NO",
            "ddp": "MULTI_GPU",
            "fsdp": "FSDP",
            "deepspeed": "DEEPSPEED",
        }[strategy],
    )


def build_program(config: ir.Config, wf: ir.Workflow) -> Program:
    p = Program(config=config, workflow=wf)
    trainer = wf.trainer
    p.options = _options(wf, trainer)
    p.env = list(wf.env)
    _data_steps(p)
    if trainer is not None:
        _settings(p, trainer)
        _train(p, trainer)
    _requirements(p, trainer)
    _launch(p, trainer)
    if trainer is not None:
        p.helpers |= {"size", "first_rows", "progress"}
    for helper in list(p.helpers):
        p.helpers |= HELPER_NEEDS.get(helper, set())
    p.streaming = bool(streamed_jobs(wf))
    needed = {"argparse", "json", "sys"}
    if trainer is not None:
        needed |= {"os", "signal"}
        needed.update(tasks.of_job(trainer).IMPORTS)
    for helper in p.helpers:
        needed.update(HELPER_IMPORTS.get(helper, []))
    if p.env:
        needed.add("os")
    p.imports = sorted(needed)
    return p


def program_template(wf: ir.Workflow, p: Program) -> str:
    """The template of the workflow's program: one per program shape."""
    if wf.trainer is None:
        return "prepare.py.jinja"
    return str(tasks.of_job(wf.trainer).TEMPLATE)


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
    return files
