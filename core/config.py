"""Settings: every knob of the service, read once from the environment (prefix SYNTHGEN_).

Injected everywhere (api deps, worker runner); nothing deeper reads os.environ.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".synthgen")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHGEN_", extra="ignore")

    # The embedded stack's defaults: a SQLite file, a SQLite-backed broker, a local store.
    database_url: str = f"sqlite:///{DEFAULT_HOME}/synthgen.db"
    broker_url: str = f"sqla+sqlite:///{DEFAULT_HOME}/broker.db"
    storage_url: str = f"file://{DEFAULT_HOME.resolve()}/store"
    s3_endpoint_url: str | None = None
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
    webhook_secret: str | None = None
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
    artifact_url_ttl_s: int = 3600
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 120.0
    requeue_after_s: float = 60.0
    max_attempts: int = 3
    shard_size: int = 1000
    queue_prefix: str = ""

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
