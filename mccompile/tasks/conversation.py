"""The chat keys: how conversations become text, and the tokenizer's tokens.

A schema fragment shared by the tasks that train on conversations; a task includes it in
its ``FIELDS`` (``{**conversation.FIELDS, ...}``). Their meaning is in :mod:`mccompile.chat`.
"""

from __future__ import annotations

from typing import Any

FIELDS: dict[str, Any] = {
    "chat_template": {
        "description": (
            "How conversations become text: tokenizer (its own template; the plain format "
            "when it has none), plain, a built-in (alpaca, chatml, gemma3, llama3, mistral, "
            "qwen3), a .jinja file (relative to the config) or inline Jinja text."
        ),
        "type": "string",
        "minLength": 1,
        "default": "tokenizer",
    },
    "message_fields": {
        "description": (
            "SFT: the keys of a ShareGPT turn: {role, content} (default {role: from, content: "
            "value})."
        ),
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "role": {"type": "string", "minLength": 1},
                    "content": {"type": "string", "minLength": 1},
                },
            },
            {"type": "null"},
        ],
        "default": None,
    },
    "roles": {
        "description": (
            "SFT: the spellings of each role in ShareGPT turns, e.g. {user: [human], assistant: "
            "[gpt, bot]}; roles not given keep their default spellings."
        ),
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "minItems": 1,
                },
            },
            {"type": "null"},
        ],
        "default": None,
    },
    "tools_column": {
        "description": (
            "SFT: the column of tool definitions (a list or its JSON text) passed to the chat "
            "template with ShareGPT data."
        ),
        "type": "string",
        "minLength": 1,
        "default": "tools",
    },
    "final_turn_column": {
        "description": (
            "SFT: a column holding a final assistant turn ({from, value}, {role, content} or "
            "text) appended to each conversation, e.g. chosen of preference data."
        ),
        "anyOf": [{"type": ["string", "null"]}],
        "default": None,
    },
    "special_tokens": {
        "description": (
            "Tokens set on the tokenizer: {pad_token, eos_token, bos_token, unk_token}; a token "
            "not in the vocabulary is added."
        ),
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "pad_token": {"type": "string", "minLength": 1},
                    "eos_token": {"type": "string", "minLength": 1},
                    "bos_token": {"type": "string", "minLength": 1},
                    "unk_token": {"type": "string", "minLength": 1},
                },
            },
            {"type": "null"},
        ],
        "default": None,
    },
    "added_tokens": {
        "description": (
            "New tokens added to the vocabulary; the embeddings grow (with LoRA the embedding and"
            " output layers then train and are saved with the adapter)."
        ),
        "anyOf": [
            {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
            {"type": "null"},
        ],
        "default": None,
    },
}
