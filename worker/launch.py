"""Train jobs on several GPUs: the Celery task launches ``torchrun`` with one process per
GPU, as diffusers' training examples are launched, and relays what rank 0 reports.

The task's process stays the job's only writer: it keeps the heartbeat, progress,
checkpoint uploads and the result as for a one-GPU job. The ranks write nothing but
files in the job's work directory, which the task reads as they appear:

    spec.json          what to train (engine, config, checkpoint to resume or start from)
    data.pt            the task's loaded dataset (images, labels, class names), read by each rank
    events.jsonl       rank 0, one line per event: {"progress": [step, total, metrics]},
                       {"checkpoint": step, "directory": ...} (a copy the task uploads)
    stop               written by the task when the job must stop (canceled, taken back,
                       worker shutdown); rank 0 polls it every step and all ranks agree
    outcome.json       rank 0: {"stopped": message} or {"error": {type, message}};
                       another rank's error goes to outcome-{rank}.json
    model/             rank 0: the trained model (engine.save), loaded back by the task

Every rank trains on its rows of each global batch and averages gradients with the
others (models/engines/distributed.py); rank 0's checkpoint restores all of them.

    python -m torch.distributed.run --standalone --nproc-per-node 2 -m worker.launch DIR
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from core.catalog import DATA_PARALLEL_ENGINES
from models import datasets, engines
from models.engines import distributed
from models.engines.base import EngineError, Hooks, Stopped, Trained, TrainingDiverged

log = logging.getLogger("synthgen.worker")

SPEC, EVENTS, STOP, OUTCOME, MODEL, SAVED, LOG, DATA = (
    "spec.json", "events.jsonl", "stop", "outcome.json", "model", "model.saved",
    "torchrun.log", "data.pt",
)  # fmt: skip
_ERRORS: dict[str, type[Exception]] = {
    "EngineError": EngineError,
    "TrainingDiverged": TrainingDiverged,
    "ValueError": ValueError,
    "MemoryError": MemoryError,
}


# ------------------------------------------------------------------ the task's side


def train(
    engine: str,
    *,
    dataset: datasets.ImageDataset,
    config: dict[str, Any],
    hooks: Hooks,
    gpus: int,
    directory: Path,
    poll_s: float = 0.2,
) -> Trained:
    """Train ``engine`` on ``gpus`` processes (each reads ``dataset`` from one file) and
    return what rank 0 saved; ``hooks`` behave as for ``engine.train`` in this process.

    Raises what the engine raised in a rank (EngineError, TrainingDiverged, Stopped), or
    RuntimeError with the end of torchrun's log when a rank died without saying why.
    """
    if engine not in DATA_PARALLEL_ENGINES:
        raise EngineError(f"engine {engine!r} trains on one GPU; run it with gpus 1")
    directory.mkdir(parents=True, exist_ok=True)
    # The task already holds the data (a built-in or an uploaded ds_… set): the ranks read
    # this one file rather than each fetching it again.
    torch.save(dataclasses.asdict(dataset), directory / DATA)
    spec = {
        "engine": engine,
        "config": config,
        "resume_from": str(hooks.resume_from) if hooks.resume_from else None,
        "init_from": str(hooks.init_from) if hooks.init_from else None,
        "task_pid": os.getpid(),
    }
    (directory / SPEC).write_text(json.dumps(spec))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
        "--nproc-per-node", str(gpus), "-m", "worker.launch", str(directory),
    ]  # fmt: skip
    log.info("training on %d GPUs: %s", gpus, " ".join(command))
    events = _EventReader(directory / EVENTS)
    with (directory / LOG).open("wb") as output:
        # A session of its own: a Ctrl-C or SIGTERM meant for the worker reaches the task,
        # which asks the ranks to checkpoint and stop rather than have them killed mid-step.
        process = subprocess.Popen(  # noqa: S603 - our own module
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while process.poll() is None:
                _relay(events.new(), hooks)
                if hooks.should_stop():
                    (directory / STOP).touch()
                time.sleep(poll_s)
        except BaseException:
            _end(process)
            raise
    _relay(events.new(), hooks)
    return _outcome(engine, process.returncode, directory)


class _EventReader:
    """The complete lines appended to ``path`` since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            chunk = stream.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def _relay(events: list[dict[str, Any]], hooks: Hooks) -> None:
    for event in events:
        if "progress" in event:
            step, total, metrics = event["progress"]
            hooks.progress(step, total, **metrics)
        elif "checkpoint" in event:
            copy = Path(event["directory"])
            if hooks.checkpoint is not None:
                hooks.checkpoint(int(event["checkpoint"]), copy)
            shutil.rmtree(copy, ignore_errors=True)


def _outcome(engine: str, returncode: int, directory: Path) -> Trained:
    # Rank 0's outcome, else the first other rank's that wrote one (it died of it).
    outcomes = [p for p in [directory / OUTCOME] if p.exists()]
    outcomes += sorted(directory.glob("outcome-*.json"))
    if outcomes:
        outcome = json.loads(outcomes[0].read_text())
        if "stopped" in outcome:
            raise Stopped(outcome["stopped"])
        error = outcome["error"]
        raise _ERRORS.get(error["type"], RuntimeError)(error["message"])
    if (directory / SAVED).exists():
        # Rank 0 saves only after its last step, and every step waited for every rank's
        # gradients: the model is whole. A rank that dies after that, leaving the process
        # group (gloo can abort one whose peer tore its connection down first), changes
        # nothing of it.
        if returncode != 0:
            log.warning(
                "data-parallel training saved its model, then torchrun exited with status "
                "%d while the ranks left the process group; the model is kept",
                returncode,
            )
        return engines.get(engine).load(directory / MODEL)
    tail = (directory / LOG).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"data-parallel training exited with status {returncode}: {tail}")


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop torchrun (it ends its ranks) when the task itself is torn down."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# ------------------------------------------------------------------ a rank's side


def main(argv: list[str]) -> int:
    """One rank: join the group, train, and (rank 0) write events, outcome and model."""
    directory = Path(argv[0])
    spec = json.loads((directory / SPEC).read_text())
    shard = distributed.init(int(os.environ["LOCAL_RANK"]))  # torchrun's, per process
    events = (directory / EVENTS).open("a") if shard.is_main else None

    def emit(event: dict[str, Any]) -> None:
        if events is not None:
            events.write(json.dumps(event) + "\n")
            events.flush()

    def should_stop() -> bool:
        asked = shard.is_main and ((directory / STOP).exists() or not _alive(int(spec["task_pid"])))
        return shard.agree(asked, distributed.device())

    def checkpoint(step: int, written: Path) -> None:
        copy = directory / "checkpoints" / str(step)
        shutil.copytree(written, copy)
        emit({"checkpoint": step, "directory": str(copy)})

    hooks = Hooks(
        progress=lambda step, total, **metrics: emit({"progress": [step, total, metrics]}),
        should_stop=should_stop,
        checkpoint=checkpoint if shard.is_main else None,
        resume_from=Path(spec["resume_from"]) if spec["resume_from"] else None,
        init_from=Path(spec["init_from"]) if spec["init_from"] else None,
    )
    outcome = directory / (OUTCOME if shard.is_main else f"outcome-{shard.rank}.json")
    ended_together = False  # trained or stopped: every rank gets there (see shutdown)
    try:
        engine = engines.get(spec["engine"])
        data = datasets.ImageDataset(**torch.load(directory / DATA, weights_only=True))
        trained = engine.train(data, spec["config"], hooks)
        if shard.is_main:
            engine.save(trained, directory / MODEL)
            (directory / SAVED).touch()  # after the save: the model is whole
        ended_together = True
        return 0
    except Stopped as exc:
        if shard.is_main:
            outcome.write_text(json.dumps({"stopped": str(exc)}))
        ended_together = True
        return 0
    except Exception as exc:
        outcome.write_text(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc)}}))
        raise
    finally:
        if events is not None:
            events.close()
        distributed.shutdown(together=ended_together)


def _alive(pid: int) -> bool:
    """Whether the task that launched the ranks still runs (if its worker was killed,
    the ranks stop rather than train on for nobody)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
