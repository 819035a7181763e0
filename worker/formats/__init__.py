"""Output formats of the jobs that make images (generate, txt2img): each module holds its
format's ``Writer`` and the ``read`` that gives the images back (evaluate's
``source_job``). The format's name is the request's ``output_format``, recorded in the
job's result, so a reader is chosen by name, never by guessing from file names."""

from __future__ import annotations

from types import ModuleType

from worker.formats import imagefolder, npz, parquet, png, webdataset
from worker.formats.base import MANIFEST, Batches, OutputWriter, Source, Target

FORMATS: dict[str, ModuleType] = {
    "png": png,
    "npz": npz,
    "imagefolder": imagefolder,
    "parquet": parquet,
    "webdataset": webdataset,
}


def writer(fmt: str, target: Target) -> OutputWriter:
    """The writer of format ``fmt`` (one of :data:`FORMATS`)."""
    made: OutputWriter = FORMATS[fmt].Writer(target)
    return made


def read(fmt: str, source: Source) -> tuple[Batches, int]:
    """(batches, how many images) of a finished job's output written as ``fmt``."""
    result: tuple[Batches, int] = FORMATS[fmt].read(source)
    return result


__all__ = ["FORMATS", "MANIFEST", "Batches", "OutputWriter", "Source", "Target", "read", "writer"]
