"""task: sft — supervised fine-tuning of a causal LM (TRL's SFTTrainer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks import conversation, vision
from mccompile.tasks.base import (
    KERNELS_REQUIREMENT,
    Checks,
    Where,
    bool_field,
    is_null,
    is_set,
    text_field,
    value,
)
from mccompile.tasks.fields import CHAT_FIELDS

NAME = "sft"
DESCRIPTION = "supervised fine-tuning of a causal LM"
TEMPLATE = "sft.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS = ("math",)

FIELDS: dict[str, Any] = {
    **conversation.FIELDS,
    "neftune_noise_alpha": {
        "description": "NEFTune: noise on the input embeddings in training"
        " (null: off; 5 is usual).",
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "null"},
            {"$ref": "#/$defs/expression"},
        ],
        "default": None,
    },
    "packing": {
        "description": "SFT: pack examples into full rows (auto: only with a varlen attention"
        " kernel).",
        "anyOf": [{"type": "boolean"}, {"const": "auto"}, {"$ref": "#/$defs/expression"}],
        "default": False,
    },
    "text_column": text_field(
        "SFT: the column holding whole training texts; classification: the input text"
        " (default text)."
    ),
    "prompt_column": text_field("SFT: the prompt column (with response_column)."),
    "response_column": text_field("SFT: the response column (with prompt_column)."),
    "system_column": text_field("SFT: optional system-prompt column."),
    "messages_column": {
        "description": "SFT: the column of chat turns ({role, content}).",
        "type": "string",
        "default": "messages",
    },
    "train_on_prompt": bool_field(
        "SFT: also compute loss on prompts and non-assistant turns.", False
    ),
    "padding_free": bool_field(
        "SFT: concatenate each batch without padding (position ids mark the examples).", False
    ),
    **vision.FIELDS,
}

SETTING_GROUPS: dict[str, list[str]] = {
    "Data": [
        "max_seq_length",
        "packing",
        "text_column",
        "prompt_column",
        "response_column",
        "system_column",
        "messages_column",
        "train_on_prompt",
        "validation_split",
    ],
    "Chat format": list(CHAT_FIELDS),
    "Vision": vision.GROUP,
    "Speed": [
        "group_by_length",
        "padding_free",
        "use_liger_kernel",
        "torch_compile",
        "dataloader_num_workers",
        "dataset_num_proc",
        "ddp_timeout",
    ],
}

# settings the code of a data format never reads
_HIDDEN: dict[str, tuple[str, ...]] = {
    "text": (
        "prompt_column",
        "response_column",
        "system_column",
        "messages_column",
        "train_on_prompt",
        *CHAT_FIELDS[:5],
    ),
    "prompt_response": ("text_column", "messages_column", *CHAT_FIELDS[1:5]),
    "auto": ("text_column", "prompt_column", "response_column", "system_column"),
    "vision": (
        "text_column",
        "prompt_column",
        "response_column",
        "system_column",
        "packing",
        "padding_free",
        "group_by_length",
        *CHAT_FIELDS[3:],
    ),
}


def data_format(job: ir.Job) -> str:
    """text, prompt_response, auto (detected from the columns at run time), or vision (chat
    turns with images)."""
    if vision.is_vision(job):
        return "vision"
    if not is_null(job, "text_column"):
        return "text"
    if not is_null(job, "prompt_column"):
        return "prompt_response"
    return "auto"


def hidden(fmt: str) -> tuple[str, ...]:
    return _HIDDEN.get(fmt, ()) + (() if fmt == "vision" else vision.TEXT_HIDDEN)


def template(job: ir.Job) -> str:
    return vision.template(job, TEMPLATE)


def may_join_rows(job: ir.Job) -> bool:
    """Packed or padding-free rows may reach the model (packing true or auto, padding_free
    true, or either set at run time)."""
    return value(job, "packing") is not False or value(job, "padding_free") is not False


def extra_requirements(job: ir.Job) -> tuple[str, ...]:
    """Joined rows with attn_implementation null: the program looks for a variable-length
    kernel, and the kernels package fetches one from the hub without building flash-attn."""
    if vision.is_vision(job):
        return (vision.PILLOW_REQUIREMENT,)
    if may_join_rows(job) and job.fields.get("attn_implementation", ir.Lit(None)) == ir.Lit(None):
        return (KERNELS_REQUIREMENT,)
    return ()


@dataclass(frozen=True)
class SFTProgram:
    """What sft.py.jinja reads as ``p.task``."""

    name: str
    loss_on: str  # which tokens carry the loss, in words
    system_from_column: bool  # prompt_response rows read a system column
    may_pack: bool  # packing is on (true or auto), or set at run time
    packing_auto: bool  # packing may be auto: the program decides on the machine it runs on
    # packed or padding-free rows may reach the model: the program looks for a
    # variable-length attention kernel and says what attending across whole rows costs
    varlen: bool


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> SFTProgram:
    fmt = data_format(job)
    if fmt == "text":
        loss_on = "every token"
    elif values.get("train_on_prompt") is False:
        loss_on = "the responses"
    else:
        loss_on = "every token (train_on_prompt)"
    return SFTProgram(
        name=NAME,
        loss_on=loss_on,
        system_from_column=not (
            values.get("system_column") is None and ref.get("system_column") == "SYSTEM_COLUMN"
        ),
        may_pack=values.get("packing") is not False,
        packing_auto=values.get("packing") in ("auto", None),
        varlen=may_join_rows(job),
    )


def check(c: Checks, job: ir.Job, where: Where) -> None:
    vision.check(c, job, where)
    if vision.is_vision(job):
        return
    given = job.explicit
    cid = job.component
    if is_set(job, "text_column") and (
        is_set(job, "prompt_column") or is_set(job, "response_column")
    ):
        c.error(
            "column-conflict",
            f"component '{cid}' gives both text_column and prompt_column/response_column;"
            " use one kind of data",
            where("text_column"),
        )
    elif is_set(job, "prompt_column") != is_set(job, "response_column"):
        have, lack = (
            ("prompt_column", "response_column")
            if is_set(job, "prompt_column")
            else ("response_column", "prompt_column")
        )
        c.error("column-pair", f"'{have}' needs '{lack}' as well", where(have))
    if is_set(job, "system_column") and not is_set(job, "prompt_column"):
        c.error(
            "column-pair",
            "'system_column' goes with prompt_column and response_column",
            where("system_column"),
        )
    if "messages_column" in given and (is_set(job, "text_column") or is_set(job, "prompt_column")):
        c.error(
            "column-conflict",
            "'messages_column' is for chat data; it cannot go with text_column or prompt_column",
            where("messages_column"),
        )
    attention = value(job, "attn_implementation")
    packed = value(job, "packing") not in (None, False)
    if attention in ("eager", "sdpa") and (packed or value(job, "padding_free") is True):
        rows = "packed" if packed else "padding-free"
        c.warning(
            "slow-attention",
            f"{rows} rows under attn_implementation: {attention} attend across the whole row"
            " (each batch is one sequence under a block mask); leave attn_implementation null"
            " and the program takes a variable-length kernel (flash-attn 3 / 2, or a kernels"
            " build) where the GPU has one",
            where("attn_implementation"),
        )
    if value(job, "train_on_prompt") and is_set(job, "text_column"):
        c.warning(
            "no-effect",
            "train_on_prompt has no effect with text_column (every token carries loss)",
            where("train_on_prompt"),
        )
