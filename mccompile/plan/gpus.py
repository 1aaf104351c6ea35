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
    "rtx6000ada": 47.5,
    "t4": 14.6,
    "v100": 31.7,
    "v100-16gb": 15.8,
    "rtx4090": 23.6,
    "rtx3090": 23.6,
    "rtx5090": 31.4,
}


def parse_gpu_memory(text: str) -> tuple[str, int] | None:
    """``80GB``, ``40GiB``, ``24g``, or a GPU name (``H100``, ``A100-40GB``) -> (label, bytes)."""
    key = text.strip().lower().replace(" ", "").replace("_", "-")
    name = key.removeprefix("nvidia-")
    if name in GPUS:
        return f"{text.strip()} ({GPUS[name]:g} GiB)", int(GPUS[name] * GiB)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?", key)
    if not m:
        return None
    amount = float(m.group(1))
    unit = m.group(2) or "gb"
    scale = {"gib": GiB, "gb": 10**9, "g": GiB, "mib": 1024**2, "mb": 10**6, "m": 1024**2}[unit]
    return text.strip(), int(amount * scale)
