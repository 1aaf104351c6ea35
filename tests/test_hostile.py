"""Hostile configs: no text injects code, secrets stay out of the output, no YAML crashes us."""

from __future__ import annotations

import ast
import io
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mccompile.cli import main

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# any text a YAML string can hold (YAML cannot hold most control characters or surrogates)
TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: "${" not in s and s.strip() == s and s.strip())


def _build(tmp_path: Path, config: dict[str, Any]) -> tuple[int, Path, str]:
    path = tmp_path / "config.yaml"
    # every string double-quoted: PyYAML writes YAML 1.1, where 1e5 is a string, not a number
    path.write_text(yaml.safe_dump(config, allow_unicode=True, default_style='"'), encoding="utf-8")
    out = tmp_path / "out"
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["build", str(path), "-o", str(out), "--force"])
    return code, out, err.getvalue()


def _constants(program: Path) -> dict[str, Any]:
    tree = ast.parse(program.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def _keywords(program: Path) -> list[tuple[str, Any]]:
    tree = ast.parse(program.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg:
            try:
                found.append((node.arg, ast.literal_eval(node.value)))
            except ValueError:
                continue
    return found


def _all_python_parses(out: Path) -> None:
    for program in out.rglob("*.py"):
        ast.parse(program.read_text(encoding="utf-8"))


TRAINER_TEXT_FIELDS = ["model", "model_revision", "output_dir", "text_column"]


@SETTINGS
@example(field="model", value='"""')
@example(field="output_dir", value="{{ 7*7 }}")
@example(field="text_column", value="x' + __import__('os').getcwd() + '")
@given(field=st.sampled_from(TRAINER_TEXT_FIELDS), value=TEXT)
def test_trainer_strings_reach_code_as_the_same_constant(
    tmp_path: Path, field: str, value: str
) -> None:
    trainer = {
        "id": "t",
        "type": "model-trainer",
        "model": "m",
        "text_column": "text",
        field: value,
    }
    code, out, err = _build(tmp_path, {"components": [trainer]})
    assert code == 0, err
    _all_python_parses(out)
    assert _constants(out / "t" / "train.py")[field.upper()] == value


@SETTINGS
@example(value='"""')
@example(value="\\N{x}")
@example(value="{{ 7*7 }}")
@example(value="'; import os #")
@example(value="a\\")
@example(value="{% raw %}")
@example(value='")\nimport os\n("')
@given(value=TEXT)
def test_titles_and_descriptions_cannot_break_out(tmp_path: Path, value: str) -> None:
    config = {
        "components": [{"id": "t", "type": "model-trainer", "model": "m", "title": value}],
        "workflows": [
            {
                "id": "w",
                "title": value,
                "description": value,
                "jobs": [{"id": "j", "component": "t"}],
            }
        ],
    }
    code, out, err = _build(tmp_path, config)
    assert code == 0, err
    _all_python_parses(out)


@SETTINGS
@given(
    field=st.sampled_from(["path", "name", "split", "revision", "cache_dir", "data_dir"]),
    value=TEXT,
)
def test_loader_strings_reach_code_as_the_same_constant(
    tmp_path: Path, field: str, value: str
) -> None:
    loader = {"id": "d", "type": "datasets", "provider": "huggingface", "path": "p", field: value}
    code, out, err = _build(tmp_path, {"components": [loader]})
    assert code == 0, err
    _all_python_parses(out)
    assert (field, value) in _keywords(out / "d" / "prepare.py")


@SETTINGS
@given(value=TEXT.filter(lambda s: "{" not in s and "}" not in s))
def test_expression_defaults_become_the_same_option_default(tmp_path: Path, value: str) -> None:
    trainer = {
        "id": "t",
        "type": "model-trainer",
        "model": "m",
        "text_column": "text",
        "dataset": f"${{input.dataset | {value}}}",
    }
    code, out, err = _build(tmp_path, {"components": [trainer]})
    assert code == 0, err
    _all_python_parses(out)
    defaults = [v for k, v in _keywords(out / "t" / "train.py") if k == "default"]
    assert value.strip() in defaults


@SETTINGS
@given(value=TEXT)
def test_map_templates_are_data_never_code(tmp_path: Path, value: str) -> None:
    template = value.replace("{", "{{").replace("}", "}}") + " {instruction}"
    config = {
        "components": [
            {
                "id": "m",
                "type": "datasets",
                "method": "map",
                "dataset": "./d.json",
                "template": template,
            }
        ]
    }
    code, out, err = _build(tmp_path, config)
    assert code == 0, err
    _all_python_parses(out)
    assert ("template", template) in _keywords(out / "m" / "prepare.py")


def test_env_values_never_reach_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_SECRET_value_1234567890"
    monkeypatch.setenv("HF_TOKEN", secret)
    config = {
        "components": [
            {
                "id": "d",
                "type": "datasets",
                "provider": "huggingface",
                "path": "org/private",
                "token": "${env.HF_TOKEN}",
            }
        ]
    }
    code, out, err = _build(tmp_path, config)
    assert code == 0, err
    for path in out.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8"), path
    program = (out / "d" / "prepare.py").read_text()
    assert 'os.environ["HF_TOKEN"]' in program
    assert "check_environment()" in program


def _yaml_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5000),
        st.floats(allow_nan=False),
        TEXT,
        st.sampled_from(
            ["sft", "lora", "nf4", "${input.x}", "${jobs.a.output}", "${env.X}", "${in"]
        ),
    )
    keys = (
        st.sampled_from(
            [
                "id",
                "type",
                "model",
                "task",
                "provider",
                "method",
                "path",
                "dataset",
                "jobs",
                "job",
                "component",
                "components",
                "workflows",
                "input",
                "depends_on",
                "lora_r",
                "condition",
                "template",
                "peft_adapter",
                "quantization",
                "text_column",
                "distributed",
                "strategy",
            ]
        )
        | TEXT
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=25,
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    document=st.dictionaries(
        st.sampled_from(["components", "workflows", "component", "workflow", "x"]),
        _yaml_values(),
        max_size=3,
    )
)
def test_random_documents_never_crash(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["validate", str(path)])
    assert code in (0, 2)
    assert "Traceback" not in err.getvalue()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_random_text_never_crashes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["validate", str(path)])
    assert code in (0, 2)


def test_the_bad_input_corpus_is_large() -> None:
    assert len(list((Path(__file__).parent / "bad").glob("*.yaml"))) >= 80
