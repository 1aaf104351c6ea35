"""The program model of a vision-language trainer (sft or dpo with images_column).

The decisions beyond the task's own: where the training data file is (relative image paths
start from its folder), which template lays the program out.
"""

from __future__ import annotations

from typing import Any

from mccompile import ir
from mccompile.tasks import preference, vision
from mccompile.tasks.base import value

# the field of a load job that names its files
_FILE_FIELDS = {"local": "data_files", "huggingface": "path"}


def data_file_code(wf: ir.Workflow, source: ir.Value | None, code: Any) -> str:
    """Code for the training data's file (or files): a text dataset, a local load's data_files,
    a hub load's path, followed through filter / map / select; "None" where it is not known."""
    jobs = {job.id: job for job in wf.jobs}
    seen: set[str] = set()
    value = source
    while isinstance(value, ir.JobRef) and value.job in jobs and value.job not in seen:
        seen.add(value.job)
        job = jobs[value.job]
        if job.kind == "load":
            value = job.fields.get(_FILE_FIELDS.get(job.provider or "", ""))
        elif job.method in ("filter", "map", "select", "deduplicate"):
            value = job.fields.get("dataset")
        else:  # concat, interleave: more than one data file
            return "None"
    if value is None or isinstance(value, ir.JobRef) or value == ir.Lit(None):
        return "None"
    return str(code(value))


def program_model(p: Any, job: ir.Job, code: Any) -> vision.VisionProgram:
    reference = None
    if value(job, "task") == "dpo":
        words: tuple[str, ...]
        ref_code, said = preference.reference_code(job, p.value)
        words = tuple(preference.reference_lines(said))
        reference = (ref_code, words)
    files = data_file_code(p.workflow, job.fields.get("dataset"), code)
    return vision.program_model(job, p.value, files, reference)
