"""The baseline for bench/submission.py: a bare FastAPI endpoint that only calls Celery's
``apply_async`` on the same Redis (no auth, no validation, no database)."""

from __future__ import annotations

import os

from celery import Celery
from fastapi import FastAPI

celery = Celery("baseline", broker=os.environ["BENCH_BROKER_URL"])
QUEUE = os.environ["BENCH_QUEUE"]
app = FastAPI()


@app.post("/jobs", status_code=201)
def submit(body: dict) -> dict:
    result = celery.send_task("worker.tasks.run_job", args=["x"], queue=QUEUE)
    return {"id": result.id}
