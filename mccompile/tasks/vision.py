"""Vision-language fine-tuning: images beside the chat turns of ``task: sft`` and ``task: dpo``.

Not a task of its own: ``images_column`` on an sft or dpo trainer makes its program a
vision-language one (the model loaded with ``AutoModelForImageTextToText``, its
``AutoProcessor`` given to TRL). The keys, checks and program model live here so that the
text programs stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mccompile import ir
from mccompile.tasks.base import Checks, Where, bool_field, is_set, text_field, value

# the program of each task when the trainer reads images
TEMPLATES = {"sft": "sft_vision.py.jinja", "dpo": "dpo_vision.py.jinja"}

# image files are opened and resized with PIL in the program
PILLOW_REQUIREMENT = "pillow>=10"
# LLaMA-Factory's defaults (image_min_pixels 32 * 32, image_max_pixels 768 * 768)
MIN_PIXELS = 32 * 32
MAX_PIXELS = 768 * 768

FIELDS: dict[str, Any] = {
    "images_column": text_field(
        "Vision: the column of each row's images (paths, URLs or hub images); set, the"
        " model is trained as a vision-language model (null: text only)."
    ),
    "image_dir": text_field(
        "Vision: the folder relative image paths start from (null: the folder of the data"
        " file; the working directory for data that is not one local file)."
    ),
    "image_min_pixels": {
        "description": "Vision: smaller images are scaled up to this many pixels (aspect kept).",
        "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/expression"}],
        "default": MIN_PIXELS,
    },
    "image_max_pixels": {
        "description": "Vision: larger images are scaled down to this many pixels (aspect kept).",
        "anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/expression"}],
        "default": MAX_PIXELS,
    },
    "freeze_vision_tower": bool_field(
        "Vision: the vision encoder does not train (false: it trains too; with LoRA, adapters"
        " on its layers).",
        True,
    ),
    "freeze_multi_modal_projector": bool_field(
        "Vision: the projector from image features to the language model does not train"
        " (false: it trains in full, with LoRA as well).",
        True,
    ),
}
GROUP = list(FIELDS)
# the keys a text-only trainer never reads
TEXT_HIDDEN = tuple(FIELDS)


def is_vision(job: ir.Job) -> bool:
    """The trainer reads images: images_column is given (as a literal, see check)."""
    return is_set(job, "images_column")


def template(job: ir.Job, text_template: str) -> str:
    """The program's template: the task's own, or its vision-language one."""
    return TEMPLATES[str(value(job, "task"))] if is_vision(job) else text_template


@dataclass(frozen=True)
class VisionProgram:
    """What sft_vision.py.jinja and dpo_vision.py.jinja read as ``p.task``."""

    name: str
    loss_on: str  # which tokens carry the loss, in words
    chat_template: str  # the processor's, or the config's (set on the processor)
    data_file_code: str  # code for the training data file (None: not one local file)
    reference_code: str = "None"  # dpo: the trainer's ref_model
    reference: tuple[str, ...] = ()  # dpo: what serves as the reference, in comment lines
    loads_reference: bool = False


def program_model(
    job: ir.Job,
    values: Mapping[str, Any],
    data_file_code: str,
    reference: tuple[str, tuple[str, ...]] | None = None,
) -> VisionProgram:
    if value(job, "task") == "dpo":
        loss_on = "the chosen and rejected answers"
    elif values.get("train_on_prompt"):
        loss_on = "every text token (train_on_prompt); never the image tokens"
    else:
        loss_on = "the assistant's text; never the prompts or the image tokens"
    code, words = reference or ("None", ())
    return VisionProgram(
        name=str(value(job, "task")),
        loss_on=loss_on,
        chat_template=str(values.get("template_kind", "tokenizer")),
        data_file_code=data_file_code,
        reference_code=code,
        reference=words,
        loads_reference=code != "None",
    )


# keys a vision-language program does not read, and what to do instead
_NOT_WITH_IMAGES = {
    "text_column": "vision-language rows are chat turns (a messages or conversations column)",
    "response_column": "vision-language rows are chat turns (a messages or conversations column)",
    "system_column": "a system turn goes into the chat turns",
    "packing": "rows with images are not packed",
    "padding_free": "rows with images are padded, not concatenated",
    "special_tokens": "the processor's tokenizer is used as it is",
    "added_tokens": "the processor's tokenizer is used as it is",
    "final_turn_column": "give the whole conversation in the turns",
    "tools_column": "tool definitions are not rendered with images",
    "group_by_length": "the length of a row with images is known only when it is batched",
}


def check(c: Checks, job: ir.Job, where: Where) -> None:
    """What the schema cannot say about the vision keys."""
    column = job.fields.get("images_column")
    if column is not None and not isinstance(column, ir.Lit):
        c.error(
            "vision-literal",
            "images_column decides the program's shape (a vision-language model or a text one):"
            " give it in the config, not from an option or variable",
            where("images_column"),
        )
        return
    if not is_vision(job):
        for name in TEXT_HIDDEN:
            if name in job.explicit and name != "images_column":
                c.error(
                    "vision-key",
                    f"'{name}' applies to vision-language training: set images_column (the"
                    " column of each row's images) as well",
                    where(name),
                )
        return
    task = value(job, "task")
    for name, instead in _NOT_WITH_IMAGES.items():
        if is_set(job, name) and name in job.explicit:
            c.error(
                "vision-conflict", f"'{name}' cannot go with images_column: {instead}", where(name)
            )
    if task == "sft" and is_set(job, "prompt_column"):
        c.error(
            "vision-conflict",
            "'prompt_column' cannot go with images_column: vision-language rows are chat turns"
            " (a messages or conversations column)",
            where("prompt_column"),
        )
    low, high = value(job, "image_min_pixels"), value(job, "image_max_pixels")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        c.error(
            "pixel-bounds",
            f"image_min_pixels ({low}) is above image_max_pixels ({high})",
            where("image_min_pixels"),
        )
    template = value(job, "chat_template")
    if task == "dpo" and template not in (None, "tokenizer"):
        c.error(
            "vision-template",
            "vision-language DPO renders the pairs with the processor's own chat template"
            " (chat_template: tokenizer)",
            where("chat_template"),
        )
    if task == "sft" and template == "plain":
        c.error(
            "vision-template",
            "the plain format has no place for images: use the processor's chat template"
            " (chat_template: tokenizer), a built-in or a .jinja file",
            where("chat_template"),
        )
    if task == "dpo" and value(job, "truncation_mode") == "keep_end":
        c.error(
            "vision-conflict",
            "truncation_mode keep_end would cut the image tokens off the prompt: use keep_start",
            where("truncation_mode"),
        )
    if task == "dpo" and value(job, "precompute_ref_log_probs") is True:
        c.error(
            "vision-conflict",
            "TRL computes the reference model's log-probabilities of pairs with images as it"
            " trains: leave precompute_ref_log_probs false",
            where("precompute_ref_log_probs"),
        )
    if value(job, "quantization") and value(job, "freeze_vision_tower") is False:
        c.error(
            "vision-conflict",
            "a quantized vision tower cannot train: keep freeze_vision_tower true with"
            " quantization",
            where("freeze_vision_tower"),
        )
