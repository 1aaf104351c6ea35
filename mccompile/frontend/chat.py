"""Chat templates and ShareGPT roles: what the chat keys of a trainer mean.

The built-in templates are data of the compiler (``chat_templates/NAME.jinja``),
written unchanged into the generated programs; nothing here imports the
training stack or jinja2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from mccompile.assets import resource_dir

# name -> where its text comes from (said in the generated program)
BUILTIN_TEMPLATES: dict[str, str] = {
    "alpaca": "the Stanford Alpaca prompt (tatsu-lab/stanford_alpaca train.py PROMPT_DICT)",
    "chatml": "ChatML, as in the transformers chat-templating guide",
    "gemma3": "Gemma 3 (google/gemma-3-*), as TRL ships it in trl/chat_templates/gemma3.jinja",
    "llama3": "Llama 3 Instruct, as TRL ships it in trl/chat_templates/llama3.jinja",
    "mistral": "Mistral Instruct (mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json)",
    "qwen3": "Qwen3 made prefix-preserving, as TRL ships it in"
    " trl/chat_templates/qwen3_training.jinja",
}
# arguments of apply_chat_template a built-in needs for the loss to fall on the answers only
TEMPLATE_KWARGS: dict[str, dict[str, Any]] = {
    # the empty thinking block becomes part of the prompt (no reasoning in the data)
    "qwen3": {"enable_thinking": False},
}
SPECIAL_NAMES = ("tokenizer", "plain")
# the roles a chat turn can take, and their default ShareGPT spellings
ROLES = ("system", "user", "assistant", "tool", "function_call")
DEFAULT_ROLES: dict[str, list[str]] = {
    "system": ["system"],
    "user": ["human"],
    "assistant": ["gpt"],
    "tool": ["observation"],
    "function_call": ["function_call"],
}
DEFAULT_MESSAGE_FIELDS = {"role": "from", "content": "value"}


@dataclass(frozen=True)
class Template:
    """A ``chat_template`` value: its kind, and its text where the program carries one."""

    kind: str  # tokenizer | plain | builtin | file | inline
    value: str
    text: str | None = None

    @property
    def source(self) -> str:
        if self.kind == "builtin":
            return f"built-in {self.value!r}: {BUILTIN_TEMPLATES[self.value]}"
        if self.kind == "file":
            return f"from the file {self.value}"
        if self.kind == "inline":
            return "written in the config"
        return ""


def template_kind(value: str) -> str:
    if value in SPECIAL_NAMES:
        return value
    if value in BUILTIN_TEMPLATES:
        return "builtin"
    if "{{" in value or "{%" in value:
        return "inline"
    if value.endswith(".jinja"):
        return "file"
    return "unknown"


@cache
def builtin_text(name: str) -> str:
    return (resource_dir("chat_templates") / f"{name}.jinja").read_text(encoding="utf-8")


def resolve_template(value: str, files: dict[str, str]) -> Template:
    """The template of a checked ``chat_template`` value (file texts read by the front end)."""
    kind = template_kind(value)
    if kind == "builtin":
        return Template(kind, value, builtin_text(value))
    if kind == "file":
        return Template(kind, value, files[value])
    if kind == "inline":
        return Template(kind, value, value)
    return Template(kind, value)


def merged_roles(given: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """The default spellings, with the roles the config gives replaced."""
    out = {role: list(spellings) for role, spellings in DEFAULT_ROLES.items()}
    for role, spellings in (given or {}).items():
        out[role] = list(spellings)
    return out


def merged_fields(given: dict[str, str] | None) -> dict[str, str]:
    return {**DEFAULT_MESSAGE_FIELDS, **(given or {})}


def jinja_problem(text: str) -> tuple[str, int] | None:
    """Why a chat template does not parse (and on which of its lines), or None.

    Parsed as transformers compiles chat templates: loop controls and the
    ``{% generation %}`` block that marks assistant output.
    """
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}  # noqa: RUF012

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    env = jinja2.Environment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols", Generation]
    )
    try:
        env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return exc.message or "invalid Jinja", exc.lineno
    return None
