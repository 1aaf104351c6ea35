"""task: dpo — direct preference optimization on preference pairs (TRL's DPOTrainer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks import preference as pref
from mccompile.tasks import vision
from mccompile.tasks.base import Checks, Where, value

NAME = "dpo"
DESCRIPTION = "direct preference optimization on pairs (prompt, chosen, rejected)"
TEMPLATE = "dpo.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS: tuple[str, ...] = ()

# TRL 1.16's DPO losses (DPOConfig.loss_type)
LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)

FIELDS: dict[str, Any] = {
    **pref.PAIR_FIELDS,
    "beta": pref.beta_field(
        "DPO: how far the policy may move from the reference model (higher: less far)."
    ),
    "loss_type": {
        "description": "DPO: the loss (TRL's names), or a list of losses combined with"
        " loss_weights.",
        "anyOf": [
            {"enum": list(LOSS_TYPES)},
            {"type": "array", "items": {"enum": list(LOSS_TYPES)}, "minItems": 1},
            {"$ref": "#/$defs/expression"},
        ],
        "default": "sigmoid",
    },
    "loss_weights": {
        "description": "DPO: the weight of each loss in loss_type; null: 1.0 each.",
        "anyOf": [
            {"type": "array", "items": {"type": "number"}, "minItems": 1},
            {"type": "null"},
            {"$ref": "#/$defs/expression"},
        ],
        "default": None,
    },
    "label_smoothing": {
        "description": "DPO: the chance a preference label is wrong (robust; exo_pair's epsilon).",
        "anyOf": [
            {"type": "number", "minimum": 0, "exclusiveMaximum": 0.5},
            {"$ref": "#/$defs/expression"},
        ],
        "default": 0.0,
    },
    "truncation_mode": {
        "description": "DPO: which end of a pair longer than max_seq_length is kept"
        " (keep_start; TRL 1.16 deprecates keep_end).",
        "anyOf": [{"enum": ["keep_start", "keep_end"]}, {"$ref": "#/$defs/expression"}],
        "default": "keep_start",
    },
    **pref.REFERENCE_FIELDS,
    **vision.FIELDS,
}

SETTING_GROUPS: dict[str, list[str]] = {
    "Chat format": pref.CHAT_GROUP,
    "Data": [
        "max_seq_length",
        "prompt_column",
        "chosen_column",
        "rejected_column",
        "truncation_mode",
        "validation_split",
    ],
    "DPO": [
        "beta",
        "loss_type",
        "loss_weights",
        "label_smoothing",
        "reference_model",
        "precompute_ref_log_probs",
    ],
    "Vision": vision.GROUP,
    "Speed": pref.SPEED_SETTINGS,
}


def data_format(job: ir.Job) -> str:
    return "vision" if vision.is_vision(job) else pref.pair_format(job)


def hidden(fmt: str) -> tuple[str, ...]:
    """The keys a format never reads (vision: pairs with images; the columns are detected
    where the config names none)."""
    return () if fmt == "vision" else pref.pair_hidden(fmt) + vision.TEXT_HIDDEN


def template(job: ir.Job) -> str:
    return vision.template(job, TEMPLATE)


def extra_requirements(job: ir.Job) -> tuple[str, ...]:
    return (vision.PILLOW_REQUIREMENT,) if vision.is_vision(job) else ()


@dataclass(frozen=True)
class DPOProgram:
    """What dpo.py.jinja reads as ``p.task``."""

    name: str
    reference_code: str  # the trainer's ref_model
    reference: tuple[str, ...]  # what serves as the reference: comment lines in the program
    loads_reference: bool  # the program defines load_reference_model


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> DPOProgram:
    code, words = pref.reference_code(job, values)
    return DPOProgram(
        name=NAME,
        reference_code=code,
        reference=pref.reference_lines(words),
        loads_reference=code != "None",
    )


def check(c: Checks, job: ir.Job, where: Where) -> None:
    vision.check(c, job, where)
    pref.check_pair_columns(c, job, where)
    pref.check_reference(c, job, where)
    pref.check_no_length_groups(c, job, where)
    losses = value(job, "loss_type")
    weights = value(job, "loss_weights")
    count = len(losses) if isinstance(losses, list) else 1 if isinstance(losses, str) else None
    if isinstance(weights, list) and count is not None and len(weights) != count:
        c.error(
            "loss-weights",
            f"loss_weights gives {len(weights)} weight{'s' * (len(weights) != 1)} for"
            f" {count} loss{'es' * (count != 1)} in loss_type",
            where("loss_weights"),
        )
    named = [losses] if isinstance(losses, str) else losses if isinstance(losses, list) else []
    smoothing = value(job, "label_smoothing")
    if "exo_pair" in named and smoothing == 0:
        c.error(
            "label-smoothing",
            "loss_type exo_pair needs label_smoothing above 0 (the EXO paper uses 1e-3)",
            where("label_smoothing" if "label_smoothing" in job.explicit else "loss_type"),
        )
    if (
        isinstance(smoothing, (int, float))
        and smoothing > 0
        and not {"robust", "exo_pair"} & set(named)
        and named
    ):
        c.warning(
            "no-effect",
            "label_smoothing is read by the robust and exo_pair losses only",
            where("label_smoothing"),
        )
    if value(job, "truncation_mode") == "keep_end":
        c.warning(
            "deprecated",
            "truncation_mode keep_end is deprecated in TRL 1.16 (removed in 2.0); keep_start"
            " drops pairs whose prompt alone fills max_seq_length",
            where("truncation_mode"),
        )
