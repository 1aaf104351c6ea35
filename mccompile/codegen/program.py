"""The program model: what a workflow's templates read (``p``), as typed dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mccompile import __version__, ir
from mccompile.codegen.render import py


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
    model: Any  # the base model written in the config, for the README (None when set at run time)
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
