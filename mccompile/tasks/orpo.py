"""task: orpo — odds ratio preference optimization: SFT and preference in one loss, no reference.

TRL 1.16 keeps its ORPOTrainer in trl.experimental.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks import preference as pref
from mccompile.tasks.base import Checks, Where

NAME = "orpo"
DESCRIPTION = "odds ratio preference optimization on pairs, without a reference model"
TEMPLATE = "orpo.py.jinja"
REQUIREMENTS = ("trl", "pandas")  # trl.experimental.orpo imports pandas itself
IMPORTS: tuple[str, ...] = ()

FIELDS: dict[str, Any] = {
    **pref.PAIR_FIELDS,
    "beta": pref.beta_field(
        "ORPO: the weight of the odds-ratio (preference) term beside the SFT loss (the"
        " paper's lambda)."
    ),
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
    "ORPO": ["beta"],
    "Speed": pref.SPEED_SETTINGS,
}


def data_format(job: ir.Job) -> str:
    return pref.pair_format(job)


def hidden(fmt: str) -> tuple[str, ...]:
    return pref.pair_hidden(fmt)


@dataclass(frozen=True)
class ORPOProgram:
    """What orpo.py.jinja reads as ``p.task``."""

    name: str


def program_model(job: ir.Job, values: Mapping[str, Any], ref: Mapping[str, str]) -> ORPOProgram:
    return ORPOProgram(name=NAME)


def check(c: Checks, job: ir.Job, where: Where) -> None:
    pref.check_pair_columns(c, job, where)
    pref.check_no_length_groups(c, job, where)
