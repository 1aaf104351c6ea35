"""What the preference tasks (dpo, orpo, reward; kto for some) share: keys, formats, checks.

Not a task: the task modules take their pieces from here.
"""

from __future__ import annotations

import textwrap
from typing import Any

from mccompile import ir
from mccompile.tasks import conversation
from mccompile.tasks.base import Checks, Where, is_null, is_set, number_field, text_field, value

# how chat turns become text: the tokenizer's template, plain, a built-in, a file or Jinja
CHAT_FIELDS: dict[str, Any] = {"chat_template": conversation.FIELDS["chat_template"]}
CHAT_GROUP = ["chat_template"]

PAIR_FIELDS: dict[str, Any] = {
    **CHAT_FIELDS,
    "prompt_column": text_field(
        "Preference pairs: the prompt column (text or chat turns); null: detected from the"
        " columns (prompt, or the turns chosen and rejected share)."
    ),
    "chosen_column": text_field(
        "Preference pairs: the preferred answer (text or chat turns); null: detected (chosen)."
    ),
    "rejected_column": text_field(
        "Preference pairs: the answer to avoid (text or chat turns); null: detected (rejected)."
    ),
}


# the Speed group without group_by_length: a preference row holds several sequences
SPEED_SETTINGS = [
    "use_liger_kernel",
    "torch_compile",
    "dataloader_num_workers",
    "dataset_num_proc",
    "ddp_timeout",
]


def beta_field(description: str) -> dict[str, Any]:
    return number_field(description, 0.1, exclusiveMinimum=0)


REFERENCE_FIELDS: dict[str, Any] = {
    "reference_model": text_field(
        "The frozen model the policy is compared with: hub id or local path; null: the base"
        " model (with LoRA, the base with the adapter switched off: no second copy)."
    ),
    "precompute_ref_log_probs": {
        "description": "Compute the reference model's log-probabilities once, before training,"
        " so it is not kept in memory while training.",
        "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
        "default": False,
    },
}


def pair_format(job: ir.Job) -> str:
    """columns (named in the config) or auto (detected from the columns at run time)."""
    if any(not is_null(job, key) for key in ("prompt_column", "chosen_column", "rejected_column")):
        return "columns"
    return "auto"


def pair_hidden(fmt: str) -> tuple[str, ...]:
    return ("prompt_column", "chosen_column", "rejected_column") if fmt == "auto" else ()


def check_pair_columns(c: Checks, job: ir.Job, where: Where) -> None:
    chosen, rejected = is_set(job, "chosen_column"), is_set(job, "rejected_column")
    if chosen != rejected:
        have, lack = (
            ("chosen_column", "rejected_column") if chosen else ("rejected_column", "chosen_column")
        )
        c.error("column-pair", f"'{have}' needs '{lack}' as well", where(have))
    if is_set(job, "prompt_column") and not chosen and not rejected:
        c.error(
            "column-pair",
            "'prompt_column' goes with chosen_column and rejected_column (without them the"
            " columns prompt, chosen and rejected are detected)",
            where("prompt_column"),
        )


def check_reference(c: Checks, job: ir.Job, where: Where) -> None:
    if is_set(job, "reference_model") and value(job, "precompute_ref_log_probs") is True:
        c.warning(
            "no-effect",
            "with precompute_ref_log_probs the reference model is only used before training",
            where("precompute_ref_log_probs"),
        )


def check_no_length_groups(c: Checks, job: ir.Job, where: Where) -> None:
    """The preference trainers batch rows as they come: group_by_length would be ignored."""
    if value(job, "group_by_length") is True and "group_by_length" in job.explicit:
        task = value(job, "task")
        c.warning(
            "no-effect",
            f"group_by_length has no effect on task: {task} (its rows hold several sequences)",
            where("group_by_length"),
        )


def reference_lines(words: str) -> tuple[str, ...]:
    """What serves as the reference, as comment lines."""
    return tuple(textwrap.wrap("the reference: " + words, 80))


def reference_code(job: ir.Job, values: Any) -> tuple[str, str]:
    """The code for the trainer's ref_model, and what serves as the reference, in words."""
    lora = "lora_r" in job.fields
    if "reference_model" in job.fields and not is_null(job, "reference_model"):
        code = "load_reference_model(REFERENCE_MODEL, precision)"
        return code, "REFERENCE_MODEL, loaded beside the policy"
    if lora:
        return "None", (
            "the base model with the adapter switched off: the policy's own weights serve, so"
            " no second copy is kept in memory"
        )
    if values.get("precompute_ref_log_probs") is True:
        return "None", (
            "the policy itself before its first step: the reference log-probabilities are"
            " computed once, before training, so no second copy is kept"
        )
    return "load_reference_model(MODEL, precision)", (
        "a frozen second copy of the base model (full fine-tuning: as much memory as the policy)"
    )
