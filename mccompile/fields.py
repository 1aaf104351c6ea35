"""Groups of trainer fields that apply together (one list each, used everywhere)."""

from __future__ import annotations

LORA_FIELDS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "lora_bias",
    "use_dora",
    "use_rslora",
    "lora_modules_to_save",
    "merge_adapter",
)
BNB4_FIELDS = ("bnb_4bit_compute_dtype", "bnb_4bit_use_double_quant")


def task_fields(task: str) -> tuple[str, ...]:
    """The keys only ``task`` reads (its schema fragment)."""
    from mccompile import schema

    return tuple(schema.task_fields(task))


SFT_FIELDS = task_fields("sft")
CLASSIFICATION_FIELDS = task_fields("classification")
