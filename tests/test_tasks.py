"""The task registry: every task module is complete, and the typed program models."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, is_dataclass
from pathlib import Path

import pytest

from mccompile import tasks
from mccompile.codegen.generate import build_program
from mccompile.codegen.program import Launch, Train
from mccompile.frontend import schema
from mccompile.ir import Config, Job, Lit, Workflow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", tasks.names())
def test_task_module_is_complete(name: str) -> None:
    module = tasks.REGISTRY[name]
    for attribute in ("DESCRIPTION", "TEMPLATE", "REQUIREMENTS", "IMPORTS", "FIELDS"):
        assert hasattr(module, attribute), attribute
    assert (ROOT / "templates" / module.TEMPLATE).is_file()
    for field in module.FIELDS.values():
        assert field["description"] and "default" in field
    from mccompile.codegen.settings import setting_groups

    grouped = {key for _, names in setting_groups(module) for key in names}
    grouped |= set(getattr(module, "NOT_SETTINGS", ()))
    assert set(module.FIELDS) <= grouped, set(module.FIELDS) - grouped
    for check in (module.data_format, module.hidden, module.check, module.program_model):
        assert callable(check)


def test_the_schema_joins_each_task_to_the_common_keys() -> None:
    trainer = schema.defs()["model_trainer"]
    assert trainer["unevaluatedProperties"] is False
    assert trainer["properties"]["task"]["anyOf"][0]["enum"] == tasks.names()
    assert "chosen_column" not in trainer["properties"]
    assert "chosen_column" in schema.trainer_fields("dpo")
    assert "chosen_column" not in schema.trainer_fields("kto")
    assert tasks.holders("reference_model") == ["dpo", "kto"]


def _workflow(task: str) -> Workflow:
    fields = {
        key: Lit(spec.get("default"))
        for key, spec in schema.trainer_fields(task).items()
        if "default" in spec and key not in ("id", "type", "default", "lora")
    }
    fields.update(
        task=Lit(task),
        model=Lit("m"),
        dataset=Lit("d.json"),
        output_dir=Lit("out"),
        distributed=Lit({"strategy": "none", "num_processes": "auto", "num_machines": 1}),
    )
    job = Job("train", "trainer", "train", None, None, fields, frozenset({"task"}), ())
    return Workflow("w", None, None, True, (job,), (), ())


@pytest.mark.parametrize("name", tasks.names())
def test_programs_read_typed_models(name: str) -> None:
    wf = _workflow(name)
    p = build_program(Config("c.yaml", "0" * 64, (wf,)), wf)
    assert isinstance(p.train, Train) and isinstance(p.launch, Launch)
    assert is_dataclass(p.task) and p.task.name == name
    with pytest.raises(FrozenInstanceError):
        p.train.lora = True  # type: ignore[misc]


def test_templates_read_the_typed_program_models_only() -> None:
    """Decisions are made in Python: no template reads the literal values of the settings."""
    for template in sorted((ROOT / "templates").glob("*.jinja")):
        assert "p.value" not in template.read_text(encoding="utf-8"), template.name
