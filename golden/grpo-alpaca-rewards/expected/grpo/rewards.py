"""Reward functions of the GRPO golden case: TRL calls each with the prompts, the completions
and every other column of the data as keyword arguments, and takes one score per completion."""


def concise(completions, **kwargs):
    """Shorter answers score higher: 1.0 for an empty answer, 0.0 from 400 characters on."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [max(0.0, 1.0 - len(text) / 400) for text in texts]
