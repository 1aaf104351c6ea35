from __future__ import annotations

import pytest

from mccompile.frontend.expressions import Expr, ExprError, Interpolation, convert, parse


def test_plain_text_is_returned_as_is() -> None:
    assert parse("tatsu-lab/alpaca") == "tatsu-lab/alpaca"


def test_whole_expression_keeps_type_and_default() -> None:
    e = parse("${input.lr as number | 1e-4}")
    assert e == Expr("input", "lr", (), "number", "1e-4", "${input.lr as number | 1e-4}")


def test_spaces_are_allowed_around_parts() -> None:
    e = parse("${  input.dataset   |   tatsu-lab/alpaca  }")
    assert isinstance(e, Expr)
    assert (e.name, e.default) == ("dataset", "tatsu-lab/alpaca")


def test_job_reference_with_dashes() -> None:
    e = parse("${jobs.load-data.output}")
    assert isinstance(e, Expr)
    assert (e.source, e.name, e.path) == ("jobs", "load-data", ())


def test_env_reference() -> None:
    e = parse("${env.HF_TOKEN}")
    assert isinstance(e, Expr)
    assert (e.source, e.name, e.default) == ("env", "HF_TOKEN", None)


def test_interpolation_mixes_text_and_expressions() -> None:
    parsed = parse("./out/${input.name}/run")
    assert isinstance(parsed, Interpolation)
    assert parsed.parts[0] == "./out/"
    assert isinstance(parsed.parts[1], Expr)
    assert parsed.parts[2] == "/run"


def test_escaped_dollar_brace_is_literal() -> None:
    assert parse("cost: $${x}") == "cost: ${x}"


def test_default_may_hold_braces() -> None:
    e = parse('${input.cond as object | {"column": "a", "operator": "empty"}}')
    assert isinstance(e, Expr)
    assert convert(e.default or "", e.type) == {"column": "a", "operator": "empty"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${inputs.x}", "unknown source 'inputs'"),
        ("${input.x", "unterminated"),
        ("${jobs.a}", "${jobs.JOB_ID.output}"),
        ("${input.x as float}", "unknown type 'float'"),
        ("${}", "empty expression"),
        ("${env.A.B}", "${env.NAME}"),
        ("${input..x}", "malformed"),
    ],
)
def test_malformed_expressions(text: str, message: str) -> None:
    with pytest.raises(
        ExprError, match=message.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")
    ):
        parse(text)


def test_an_unknown_source_suggests_the_close_one() -> None:
    with pytest.raises(ExprError) as err:
        parse("${inputs.x}")
    assert "did you mean" not in str(err.value)
    assert err.value.suggestion == "did you mean 'input'?"


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("3", "integer", 3),
        ("0.5", "number", 0.5),
        ("true", "boolean", True),
        ("[1, 2]", "list", [1, 2]),
        ("abc", "string", "abc"),
        ("12", None, 12),
        ("1e-4", None, 1e-4),
        ("null", None, None),
        ("hello", None, "hello"),
    ],
)
def test_convert_defaults(text: str, type_: str | None, value: object) -> None:
    assert convert(text, type_) == value


@pytest.mark.parametrize(
    ("text", "type_"),
    [("abc", "integer"), ("x", "number"), ("yes", "boolean"), ("{", "json"), ("1", "list")],
)
def test_convert_refuses_bad_defaults(text: str, type_: str) -> None:
    with pytest.raises(ExprError):
        convert(text, type_)
