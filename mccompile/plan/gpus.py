"""GPU memory sizes for ``mccompile plan --gpu-memory``: a size with its unit, or a GPU's name."""

from __future__ import annotations

import re

from mccompile.plan.memory import GiB

# GPU names for --gpu-memory (memory in GiB as the driver reports it, rounded down)
GPUS: dict[str, float] = {
    "h200": 139.8,
    "h100": 79.6,
    "h100-80gb": 79.6,
    "h100-94gb": 93.1,
    "h800": 79.6,
    "b200": 178.4,
    "a100": 79.2,
    "a100-80gb": 79.2,
    "a100-40gb": 39.4,
    "l40s": 44.4,
    "l40": 44.4,
    "l4": 22.0,
    "a10g": 22.0,
    "a10": 22.0,
    "a6000": 47.5,
    "6000ada": 47.5,
    "t4": 14.6,
    "v100": 31.7,
    "v100-16gb": 15.8,
    "a5000": 23.6,
    "a4000": 15.6,
    # consumer cards, by their number (``4090``, ``RTX-4090``, ``GeForce RTX 4090``)
    "5090": 31.4,
    "5080": 15.6,
    "4090": 23.6,
    "4080": 15.6,
    "4070ti": 11.6,
    "4070": 11.6,
    "3090ti": 23.6,
    "3090": 23.6,
    "3080ti": 11.6,
    "3080": 9.7,
    "3060": 11.6,
    "2080ti": 10.7,
}


def gpu_name(text: str) -> str | None:
    """The table's name for a GPU as people write it: ``H100``, ``NVIDIA A100-40GB``,
    ``RTX 4090``, ``GeForce RTX-4090``, ``4090``, ``RTX A6000``; None if unknown."""
    name = re.sub(r"[\s_-]+", "-", text.strip().lower())
    for prefix in ("nvidia-", "geforce-", "rtx-", "rtx", "tesla-"):
        name = name.removeprefix(prefix)
    for candidate in (name, name.replace("-", ""), name.replace("-ti", "ti")):
        if candidate in GPUS:
            return candidate
    return None


def parse_gpu_memory(text: str) -> tuple[str, int] | None:
    """``80GB``, ``40GiB``, ``24g``, or a GPU name (``H100``, ``A100-40GB``, ``4090``) ->
    (label, bytes). A bare number is no size (is ``80`` gigabytes or gibibytes?): None."""
    name = gpu_name(text)
    if name is not None:
        return f"{text.strip()} ({GPUS[name]:g} GiB)", int(GPUS[name] * GiB)
    key = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(gib|gb|g|mib|mb|m)", key)
    if not m:
        return None
    amount = float(m.group(1))
    unit = m.group(2)
    scale = {"gib": GiB, "gb": 10**9, "g": GiB, "mib": 1024**2, "mb": 10**6, "m": 1024**2}[unit]
    return text.strip(), int(amount * scale)
