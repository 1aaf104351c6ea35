"""Reward functions for the bad configs of task: grpo."""


def short_reward(completions, **kwargs):
    return [-float(len(c)) for c in completions]


def no_kwargs_reward(completions):
    return [0.0 for _ in completions]
