"""task: classification — sequence classification (transformers' Trainer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks.base import Checks, Where, text_field

NAME = "classification"
DESCRIPTION = "sequence classification"
TEMPLATE = "classify.py.jinja"
REQUIREMENTS: tuple[str, ...] = ()
IMPORTS: tuple[str, ...] = ()

FIELDS: dict[str, Any] = {
    "text_column": text_field(
        "SFT: the column holding whole training texts; classification: the input text"
        " (default text).",
        "text",
    ),
    "text_pair_column": text_field("Classification: second text of a pair."),
    "label_column": {
        "description": "Classification: the label column (integers or strings).",
        "type": "string",
        "default": "label",
    },
    "labels": {
        "description": "Classification: label names, fixing their order; from the data otherwise.",
        "anyOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
            {"type": "null"},
            {"$ref": "#/$defs/expression"},
        ],
        "default": None,
    },
}

SETTING_GROUPS: dict[str, list[str]] = {
    "Data": [
        "max_seq_length",
        "text_column",
        "text_pair_column",
        "label_column",
        "labels",
        "validation_split",
    ],
}


def data_format(job: ir.Job) -> str:
    return "classification"


def hidden(fmt: str) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class ClassificationProgram:
    """What classify.py.jinja reads as ``p.task``."""

    name: str


def program_model(
    job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]
) -> ClassificationProgram:
    return ClassificationProgram(name=NAME)


def check(c: Checks, job: ir.Job, where: Where) -> None:
    """Nothing beyond the schema: its keys are the task's own."""
