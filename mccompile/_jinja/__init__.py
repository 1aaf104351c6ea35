"""Templates compiled ahead of time: see mccompile/precompiled.py."""
