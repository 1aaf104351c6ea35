"""task: reward — a reward model scoring answers, trained on preference pairs (RewardTrainer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks import preference as pref
from mccompile.tasks.base import Checks, Where, value

NAME = "reward"
DESCRIPTION = "a reward model (one score per answer) trained on pairs (prompt, chosen, rejected)"
TEMPLATE = "reward.py.jinja"
REQUIREMENTS = ("trl",)
IMPORTS: tuple[str, ...] = ()

FIELDS: dict[str, Any] = {
    **pref.PAIR_FIELDS,
    "center_rewards_coefficient": {
        "description": "Reward model: weight of a loss term pulling the mean score towards 0"
        " (0.01 is usual); null: none.",
        "anyOf": [
            {"type": "number", "minimum": 0},
            {"type": "null"},
            {"$ref": "#/$defs/expression"},
        ],
        "default": None,
    },
}

SETTING_GROUPS: dict[str, list[str]] = {
    "Chat format": pref.CHAT_GROUP,
    "Data": [
        "max_seq_length",
        "prompt_column",
        "chosen_column",
        "rejected_column",
        "validation_split",
    ],
    "Reward model": ["center_rewards_coefficient"],
    "Speed": pref.SPEED_SETTINGS,
}


def data_format(job: ir.Job) -> str:
    return pref.pair_format(job)


def hidden(fmt: str) -> tuple[str, ...]:
    return pref.pair_hidden(fmt)


@dataclass(frozen=True)
class RewardProgram:
    """What reward.py.jinja reads as ``p.task``."""

    name: str


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> RewardProgram:
    return RewardProgram(name=NAME)


def check(c: Checks, job: ir.Job, where: Where) -> None:
    pref.check_pair_columns(c, job, where)
    pref.check_no_length_groups(c, job, where)
    if value(job, "center_rewards_coefficient") == 0:
        c.warning(
            "no-effect",
            "center_rewards_coefficient 0 adds nothing; null leaves the term out",
            where("center_rewards_coefficient"),
        )
