"""task: kto — Kahneman-Tversky optimization on unpaired good or bad examples (KTOTrainer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks import preference as pref
from mccompile.tasks.base import Checks, Where, is_null, is_set, number_field, text_field, value

NAME = "kto"
DESCRIPTION = "Kahneman-Tversky optimization on unpaired examples (prompt, completion, label)"
TEMPLATE = "kto.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS: tuple[str, ...] = ()

LOSS_TYPES = ("kto", "apo_zero_unpaired")

FIELDS: dict[str, Any] = {
    **pref.CHAT_FIELDS,
    "prompt_column": text_field(
        "KTO: the prompt column (text or chat turns, with completion_column); null: detected"
        " (prompt, or the turns of messages before the last answer)."
    ),
    "completion_column": text_field(
        "KTO: the answer column (text or chat turns, with prompt_column); null: detected"
        " (completion)."
    ),
    "messages_column": text_field(
        "KTO: a column of chat turns whose last assistant turn is the answer; null: detected"
        " (messages)."
    ),
    "label_column": {
        "description": "KTO: the column saying whether the answer is desirable (true or false).",
        "anyOf": [{"type": "string"}, {"$ref": "#/$defs/expression"}],
        "default": "label",
    },
    "beta": pref.beta_field(
        "KTO: how far the policy may move from the reference model (higher: less far)."
    ),
    "loss_type": {
        "description": "KTO: kto, or apo_zero_unpaired (no KL term).",
        "anyOf": [{"enum": list(LOSS_TYPES)}, {"$ref": "#/$defs/expression"}],
        "default": "kto",
    },
    "desirable_weight": number_field(
        "KTO: the weight of the desirable examples' loss (raise it when they are fewer).",
        1.0,
        exclusiveMinimum=0,
    ),
    "undesirable_weight": number_field(
        "KTO: the weight of the undesirable examples' loss.", 1.0, exclusiveMinimum=0
    ),
    **pref.REFERENCE_FIELDS,
}

SETTING_GROUPS: dict[str, list[str]] = {
    "Chat format": pref.CHAT_GROUP,
    "Data": [
        "max_seq_length",
        "prompt_column",
        "completion_column",
        "messages_column",
        "label_column",
        "validation_split",
    ],
    "KTO": [
        "beta",
        "loss_type",
        "desirable_weight",
        "undesirable_weight",
        "reference_model",
        "precompute_ref_log_probs",
    ],
    "Speed": pref.SPEED_SETTINGS,
}


def data_format(job: ir.Job) -> str:
    """columns (prompt and completion named), messages (named), or auto (detected)."""
    if not is_null(job, "prompt_column") or not is_null(job, "completion_column"):
        return "columns"
    if not is_null(job, "messages_column"):
        return "messages"
    return "auto"


def hidden(fmt: str) -> tuple[str, ...]:
    return {
        "auto": ("prompt_column", "completion_column", "messages_column"),
        "columns": ("messages_column",),
        "messages": ("prompt_column", "completion_column"),
    }.get(fmt, ())


@dataclass(frozen=True)
class KTOProgram:
    """What kto.py.jinja reads as ``p.task``."""

    name: str
    reference_code: str  # the trainer's ref_model
    reference: tuple[str, ...]  # what serves as the reference: comment lines in the program
    loads_reference: bool  # the program defines load_reference_model
    sequential: bool  # the KL term needs the rows in a fixed order


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> KTOProgram:
    code, words = pref.reference_code(job, values)
    return KTOProgram(
        name=NAME,
        reference_code=code,
        reference=pref.reference_lines(words),
        loads_reference=code != "None",
        sequential=values.get("loss_type") != "apo_zero_unpaired",
    )


def check(c: Checks, job: ir.Job, where: Where) -> None:
    pref.check_reference(c, job, where)
    pref.check_no_length_groups(c, job, where)
    prompt, completion = is_set(job, "prompt_column"), is_set(job, "completion_column")
    if prompt != completion:
        have, lack = (
            ("prompt_column", "completion_column")
            if prompt
            else ("completion_column", "prompt_column")
        )
        c.error("column-pair", f"'{have}' needs '{lack}' as well", where(have))
    if is_set(job, "messages_column") and (prompt or completion):
        c.error(
            "column-conflict",
            "'messages_column' holds the prompt and the answer; it cannot go with prompt_column"
            " or completion_column",
            where("messages_column"),
        )
    batch = value(job, "per_device_train_batch_size")
    if value(job, "loss_type") != "apo_zero_unpaired" and isinstance(batch, int) and batch < 2:
        c.error(
            "batch-size",
            "KTO estimates its KL term from the other rows of a batch: per_device_train_batch_size"
            " must be at least 2 (or loss_type: apo_zero_unpaired)",
            where("per_device_train_batch_size"),
        )
