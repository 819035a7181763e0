"""Settings: every knob of the service, read once from the environment (prefix SYNTHGEN_).

Injected everywhere (api deps, worker runner); nothing deeper reads os.environ.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOME = Path(".synthgen")


def default_api_workers() -> int:
    """One API process per core this process may run on (its CPU affinity, which a
    cpuset-limited container narrows; a CPU *quota* does not show here: set
    SYNTHGEN_API_WORKERS to it). Fewer leaves cores idle under load; more only adds
    processes fighting over the same cores (bench/submission.py)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHGEN_", extra="ignore")

    # The embedded stack's defaults: a SQLite file, a SQLite-backed broker, a local store.
    database_url: str = f"sqlite:///{DEFAULT_HOME}/synthgen.db"
    broker_url: str = f"sqla+sqlite:///{DEFAULT_HOME}/broker.db"
    storage_url: str = f"file://{DEFAULT_HOME.resolve()}/store"
    s3_endpoint_url: str | None = None
    # Where clients reach the same S3 server, when that differs from where the services
    # do: in the compose stack the services talk to http://seaweedfs:8333, a name only the
    # stack resolves, while a laptop downloads from http://localhost:8333. Presigned URLs
    # (downloads and uploads) are signed for this address; unset, for s3_endpoint_url.
    s3_public_endpoint_url: str | None = None
    # boto3's own variable names are honoured as well as the prefixed ones.
    aws_access_key_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SYNTHGEN_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
    )
    aws_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SYNTHGEN_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("SYNTHGEN_AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    inception_weights: Path | None = None
    # Signs download URLs of the local store (S3 URLs are presigned by S3 itself).
    url_signing_secret: str = "synthgen-embedded-dev-secret"  # noqa: S105 - embedded default only
    public_url: str = "http://127.0.0.1:8000"
    data_root: Path | None = None
    work_dir: Path = DEFAULT_HOME / "work"

    max_body_bytes: int = 1_000_000
    idempotency_ttl_s: int = 24 * 3600
    # How long an API process trusts a key it has checked: saves a query per request on
    # the submit hot path; a revoked key stops working within this many seconds.
    auth_cache_s: float = 10.0
    api_threads: int = 8  # threads per API process for sync handlers (api/main.py)
    # Download URLs (S3 presigned or locally signed) stop working after this long; S3
    # itself refuses presigned URLs valid for more than 7 days.
    artifact_url_ttl_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 120.0
    requeue_after_s: float = 60.0
    max_attempts: int = 3
    shard_size: int = 1000
    # One file of the sharded output formats (parquet, webdataset: worker/formats/): closed
    # at whichever bound it reaches first (issue 27: a few hundred MB at most).
    output_shard_bytes: int = Field(default=256 * 2**20, ge=2**20)
    output_shard_samples: int = Field(default=10_000, ge=1)
    queue_prefix: str = ""
    reconcile_interval_s: float = 30.0
    # Object storage: attempts per request (boto3's standard retry mode backs off
    # exponentially with jitter between them) and the connect timeout of each.
    storage_max_attempts: int = 5
    storage_connect_timeout_s: float = 10.0

    # Abuse limits (core/quotas.py, api/ratelimit.py); 0 turns a limit off.
    max_queued_jobs: int = 100  # per tenant, at submit
    max_running_jobs: int = 4  # per tenant, at claim: more wait in the queue
    gpu_seconds_per_day: float = 2 * 24 * 3600.0  # per tenant: job run time in a rolling 24 h
    max_storage_bytes: int = 50 * 2**30  # per tenant, artifacts of kept jobs
    rate_limit_per_s: float = 20.0  # per API key and API process
    rate_limit_burst: int = 60

    # Retention (core/retention.py): ended jobs older than this lose their rows and
    # artifacts, except what a registered model version still needs; 0 keeps them forever.
    retention_days: float = 30.0
    retention_interval_s: float = 3600.0

    # Synchronous previews: how long POST /v1/models/{ref}/preview holds the request
    # before answering 202 with the preview's URL; models the preview worker keeps loaded
    # (LRU by version); how long preview rows and their PNGs are kept.
    preview_wait_s: float = 30.0
    preview_cache_models: int = 4
    preview_ttl_s: int = 3600

    # Operating it: uvicorn processes of `python -m api.serve` (0: one per core), the HTTP
    # port on which each Celery worker serves /metrics (none when unset), prometheus-client's
    # multiprocess directory (a fresh temporary one per start when unset; emptied at start
    # when set).
    api_workers: int = Field(default=0, ge=0)  # 0: default_api_workers(), one per core
    # Keep Python's cyclic GC off the request path (api/main.py ``quiet_gc``); on in the
    # processes of `python -m api.serve`, off where an app is built in a test process.
    api_quiet_gc: bool = False
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    metrics_dir: Path | None = None
    log_level: str = "INFO"

    # CPU threads of torch in each worker process (worker/threads.py): by default the
    # cores the process may use (affinity, cgroup quota) less ``worker_reserved_cores``,
    # divided among the pool's processes; ``torch_threads`` overrides that choice.
    torch_threads: int | None = Field(default=None, ge=1)
    worker_reserved_cores: int = Field(default=0, ge=0)

    # Multi-GPU train jobs (worker/launch.py): the most GPUs a job may ask for, i.e. the
    # GPUs of the largest worker host (a job asking more would wait forever), and the
    # GPUs this worker has (its NVML count, within CUDA_VISIBLE_DEVICES, when unset).
    max_job_gpus: int = Field(default=1, ge=1)
    worker_gpus: int | None = Field(default=None, ge=0)

    # Job events (core/jobs/events.py) and webhooks (core/webhooks/, worker/webhooks.py).
    progress_interval_s: float = 2.0  # at most one ``progress`` event per job this often
    event_poll_interval_s: float = 0.25  # the API's one event poller per process (SQLite)
    webhook_allow_http: bool = False  # plain-http webhook URLs, for local stacks only
    # Private ranges a webhook may reach anyway, e.g. "10.1.0.0/16,127.0.0.0/8".
    webhook_allowed_cidrs: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    webhook_timeout_s: float = 10.0
    # Retries: delays double from ``base`` up to ``max`` (each drawn in [d/2, d]); a
    # ``completed`` event is retried until ``window`` after it happened, other events
    # ``webhook_attempts_non_terminal`` times in all.
    webhook_retry_base_s: float = 5.0
    webhook_retry_max_s: float = 3600.0
    webhook_retry_window_s: float = 24 * 3600.0
    webhook_attempts_non_terminal: int = 3
    webhook_secret_overlap_s: float = 24 * 3600.0  # the old secret also signs this long

    @field_validator("webhook_allowed_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # Uploads (datasets, model archives): presigned S3 PUTs, S3 multipart above the
    # threshold (parts of upload_part_bytes; S3 wants at least 5 MiB), or a signed URL on
    # the API itself for the local store.
    upload_url_ttl_s: int = 6 * 3600
    upload_multipart_threshold: int = Field(default=512 * 2**20, ge=5 * 2**20)
    upload_part_bytes: int = Field(default=64 * 2**20, ge=5 * 2**20)
    # What a dataset upload may be (worker/datasets/archive.py enforces them): the archive,
    # what it expands to (zip bombs), its member count, one member, one image's pixels.
    dataset_max_upload_bytes: int = 10 * 2**30
    dataset_max_expanded_bytes: int = 20 * 2**30
    dataset_max_files: int = 2_000_000
    dataset_max_file_bytes: int = 64 * 2**20
    dataset_max_pixels: int = 40_000_000
    # Images of mixed sizes are stored at the median shorter side, capped here.
    dataset_max_side: int = 256
    # Model imports: archive and expanded size, member count, and the s3:// prefixes an
    # import may read with the service's credentials (none unless the operator says so).
    import_max_bytes: int = 50 * 2**30
    import_max_files: int = 20_000
    import_allowed_urls: list[str] = Field(default_factory=list)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
