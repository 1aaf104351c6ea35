"""mccompile: compile declarative fine-tuning configs into standalone programs."""

from __future__ import annotations

__version__ = "0.1.0"
