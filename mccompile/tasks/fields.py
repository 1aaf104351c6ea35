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


# how conversations become text, and the tokenizer's tokens (tasks/conversation.py)
CHAT_FIELDS = (
    "chat_template",
    "message_fields",
    "roles",
    "tools_column",
    "final_turn_column",
    "special_tokens",
    "added_tokens",
)
