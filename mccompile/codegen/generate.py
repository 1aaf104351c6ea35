"""From the IR to the files of one workflow: every code decision is made here.

Templates receive a :class:`Program` and lay out code; which format, which
optimizer package, which launch settings is decided in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mccompile import __version__, ir, tasks
from mccompile.codegen import vision as vision_program
from mccompile.codegen.conditions import compile_condition
from mccompile.codegen.render import (
    black_literal,
    comment,
    py,
    render_python,
    render_text,
    text_block,
)
from mccompile.frontend import launchers
from mccompile.frontend import schema as sch
from mccompile.frontend.chat import TEMPLATE_KWARGS, merged_fields, merged_roles, resolve_template
from mccompile.frontend.checks import streamed_jobs
from mccompile.tasks.base import KERNELS_REQUIREMENT
from mccompile.tasks.fields import BNB4_FIELDS, CHAT_FIELDS, LORA_FIELDS

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
    "matplotlib": "matplotlib>=3.8",
    "flash-attn": "flash-attn>=2.3.3",
    "flash-attn-3": "flash-attn-3",
    "kernels": KERNELS_REQUIREMENT,
    "pandas": "pandas>=2.0",
}
# attention kernel -> (the package it needs, the module that package provides)
ATTENTION_PACKAGES: dict[str, tuple[str, str]] = {
    "flash_attention_2": ("flash-attn", "flash_attn"),
    "flash_attention_3": ("flash-attn-3", "flash_attn_interface"),
}
HUB_KERNELS = ("kernels", "kernels")  # attn_implementation: owner/name, from the hub
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
    "concat_datasets": {"align_types"},
    "interleave_datasets": {"align_types", "first_rows"},
    "deduplicate_rows": {"first_rows"},
}
# standard-library modules each dataset helper needs
HELPER_IMPORTS = {
    "open_dataset": ["os"],
    "load_hub": ["os"],
    "load_local": ["os"],
    "filter_rows": ["re"],
    "re": ["re"],
    "map_template": ["string"],
    "interleave_datasets": ["collections"],
    "deduplicate_rows": ["hashlib"],
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
            "neftune_noise_alpha",
            "gradient_checkpointing",
            "fp16",
            "bf16",
            "tf32",
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
            "dataset_num_proc",
            "ddp_timeout",
        ],
    ),
    (
        "Logging, evaluation and checkpoints",
        [
            "logging_steps",
            "eval_strategy",
            "eval_steps",
            "evals_per_epoch",
            "save_strategy",
            "save_steps",
            "saves_per_epoch",
            "save_total_limit",
            "output_dir",
            "resume_from_checkpoint",
            "report_to",
            "run_name",
            "plot_loss",
        ],
    ),
    ("Hub", ["push_to_hub", "hub_model_id", "hub_private_repo"]),
]
# settings the program reads only when the config turns on the one named
READ_WHEN = {
    "evals_per_epoch": "evals_per_epoch",
    "saves_per_epoch": "saves_per_epoch",
    "plot_loss": "plot_loss",
    "push_to_hub": "push_to_hub",
    "hub_model_id": "push_to_hub",
    "hub_private_repo": "push_to_hub",
}
# what dataset_num_proc: auto becomes in the program
AUTO_NUM_PROC = "max(1, min(8, (os.cpu_count() or 1) // 2))"


@dataclass(frozen=True)
class Setting:
    const: str
    code: str
    note: str
    written: str | None = None  # the value as black writes it, where it differs from code

    @property
    def inline(self) -> bool:
        """Short enough for the comment to stand beside the value."""
        return len(f"{self.const} = {self.code}  # {self.note}") <= 100

    @property
    def value(self) -> str:
        """The value as the settings block writes it (black's quotes: no black needed)."""
        return self.code if self.written is None else self.written


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
    compute_dtype: str | None  # 4-bit compute dtype given in the config (torch.bfloat16 ...)
    precision: str  # fp16, bf16, auto, fp32, or runtime (an option or variable decides)
    attention: tuple[str, str] | None  # (requirement, module) of the attention kernel
    attention_runtime: bool  # attn_implementation comes from an option or variable
    tf32: bool  # tf32 is set (or set at run time)
    model_option: bool  # the program takes --model
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
    evals_per_epoch: bool  # the code a run needs beyond training (_run_extras)
    saves_per_epoch: bool
    plot_loss: bool
    push: bool
    # the literal values (None: not a literal, set at run time), for what the code says
    evals_per_epoch_count: Any = None
    saves_per_epoch_count: Any = None
    save_strategy: Any = "steps"
    hub_model_id: Any = None
    plot_always: bool = False  # plot_loss: true (not from an option)
    push_always: bool = False  # push_to_hub: true (not from an option)


@dataclass(frozen=True)
class Chat:
    """How conversations become text and what the tokenizer gets (``p.chat``)."""

    template_kind: str = "tokenizer"  # tokenizer, plain, builtin, file or inline
    template_kwargs: bool = False  # CHAT_TEMPLATE_KWARGS is written
    special_tokens: bool = False
    added_tokens: bool = False
    final_turn: bool = False  # final_turn_column is set

    @property
    def tokens(self) -> bool:
        return self.special_tokens or self.added_tokens

    @property
    def prepares(self) -> bool:
        """The program sets a template or tokens on the tokenizer."""
        return self.tokens or self.template_kind != "tokenizer"


@dataclass(frozen=True)
class Launch:
    """accelerate_config.yaml and launch.sh (``p.launch``)."""

    strategy: str
    num_processes: Any  # a count or "auto"
    num_machines: int
    zero_stage: int | None
    offload: bool
    precision: str
    state_dict_type: str  # fsdp checkpoints: sharded or full
    distributed_type: str
    launchers: dict[str, Any]  # engine -> the values its launch file reads


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
    chat: Chat = field(default_factory=Chat)
    task: Any = None
    launch: Launch | None = None
    imports: list[str] = field(default_factory=list)
    runtime: list[Setting] = field(default_factory=list)
    keep_functions: list[KeepFunction] = field(default_factory=list)
    streaming: bool = False
    resources: list[str] = field(default_factory=list)  # the README's resource plan (Markdown)


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
            if name in READ_WHEN and not _chosen(job, READ_WHEN[name]) and name not in job.explicit:
                continue
            if name == "optimizer" and isinstance(value, ir.Lit):
                chosen = str(value.value)
                value = ir.Lit(OPTIMIZERS[chosen][0])
                note = f"transformers' name for the config's {chosen!r}" + (
                    f" (needs {OPTIMIZERS[chosen][1]})" if OPTIMIZERS[chosen][1] else ""
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
        if _chosen(job, "plot_loss"):
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


# the launch file of each cluster engine under distributed:, written when the config asks
LAUNCH_FILES = {
    "slurm": "slurm.sbatch",
    "skypilot": "skypilot.yaml",
    "kubernetes": "kubernetes.yaml",
}

def data_format(job: ir.Job) -> str:
    """The data layout of the trainer's task (sft: text, prompt_response or auto)."""
    return str(tasks.of_job(job).data_format(job))


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
        model_option=isinstance(f.get("model"), ir.Lit)
        and not any("--model" in o.flags for o in p.options),
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


def _chosen(job: ir.Job, name: str) -> bool:
    """Whether the config turns ``name`` on: set to a value, or to one known only at run time."""
    value = job.fields.get(name, ir.Lit(None))
    return not isinstance(value, ir.Lit) or value.value not in (None, False)


def _run_extras(job: ir.Job) -> dict[str, Any]:
    """The code a run needs beyond training: per-epoch schedules, the loss plot, the hub push."""

    def literal(name: str, default: Any = None) -> Any:
        return ir.lit(job.fields[name]) if name in job.fields else default

    return {
        "evals_per_epoch": _chosen(job, "evals_per_epoch"),
        "saves_per_epoch": _chosen(job, "saves_per_epoch"),
        "plot_loss": _chosen(job, "plot_loss"),
        "push": _chosen(job, "push_to_hub"),
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
    p.options = _options(wf, trainer)
    p.env = list(wf.env)
    _data_steps(p)
    if trainer is not None:
        _settings(p, trainer)
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
    chosen = getattr(module, "template", None)  # a task whose program takes more than one shape
    return str(chosen(wf.trainer) if chosen is not None else module.TEMPLATE)


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
