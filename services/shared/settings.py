"""One frozen, validated settings object, read once from the environment at start-up.

Every variable is `MUSTER_<FIELD>` (upper case); the README's configuration table is
generated from the descriptions here (`muster config`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

# Signs local tokens (`muster token`) when MUSTER_JWT_SECRET is unset. Public, so only for a
# service on a loopback address; see services/shared/auth.py.
LOCAL_DEV_JWT_SECRET = "muster-local-development-only-not-a-secret"
# The key of the ids intake derives (services/shared/ids.py), for local development only, as above.
LOCAL_DEV_ID_KEY = "muster-local-development-id-key-not-a-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MUSTER_", frozen=True, extra="ignore")
    # The local broker's credentials as the home of these settings had them when read (kept by copies).
    _home_passwords: dict[str, str] = PrivateAttr(default_factory=dict)

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "SASL_PLAINTEXT",
        description="Kafka security protocol. SASL_PLAINTEXT (the default) makes `muster dev up` run the secured "
        "local broker: SCRAM-SHA-512 users, ACLs from topics.yaml, no anonymous access; production uses SASL_SSL "
        "(docs/security.md). PLAINTEXT: a local broker without authentication or ACLs.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        "SCRAM-SHA-512", description="SASL mechanism for a secured cluster (ignored for PLAINTEXT and SSL)."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name. Unset: the local broker's credentials of MUSTER_KAFKA_PRINCIPAL."
    )
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (a secret).")
    kafka_principal: str = Field(
        "admin",
        description="Which principal of topics.yaml a process authenticates as when no SASL user name is set: "
        "`muster run <service>` uses its own; tooling (topics apply, tests' fixtures) the admin. Its password "
        "comes from the local broker's credentials file (.muster/kafka/credentials.json, written at format time).",
    )
    kafka_credentials_file: Path | None = Field(
        None, description="The local broker's SCRAM credentials, one password per principal (written by `muster dev "
        "up`, mode 0600). Unset: <MUSTER_HOME>/kafka/credentials.json; set it for a process with a home of its own "
        "that talks to another home's broker.",
    )
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client private key for mutual TLS.")
    topics_file: Path = Field(REPO_ROOT / "topics.yaml", description="Path of topics.yaml.")
    topics_profile: Literal["local", "production"] = Field(
        "local", description="Which profile of topics.yaml sets replication and min.insync.replicas."
    )
    topic_prefix: str = Field("", description="Prefix for every topic name (tests use it to isolate runs).")

    wards_file: Path = Field(
        Path(__file__).resolve().parent / "data" / "wards.csv",
        description="CSV of the borough's wards (ward_code, ward_name, approx_lat, approx_lon).",
    )

    # --- PostgreSQL ----------------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/muster"),
        description="PostgreSQL URL of the database's owner or administrator: migrations, rebuilds, `muster "
        "people erase` (a secret: it may hold a password). Services use their own roles' URLs.",
    )

    # --- People's retention (docs/security.md: the schedule and why) -----------------------
    people_retention_years: int = Field(
        6, ge=1, le=100, description="Live OFFICIAL incidents: years after closure before `muster people retention` "
        "erases their people's data key (Limitation Act 1980: six years for claims in tort or contract).",
    )
    people_retention_years_sensitive: int = Field(
        6, ge=1, le=100, description="Live OFFICIAL-SENSITIVE incidents: years after closure (domestic abuse, adult "
        "safeguarding, radicalisation, exploitation: six years after the case closes, as local-authority schedules keep them).",
    )
    people_retention_years_by_category: dict[str, int] = Field(
        {"safeguarding_child": 25}, description="Live incidents of these categories: years after closure, instead of "
        "the classification's (JSON object; a child safeguarding record is kept until the child is at least 25).",
    )
    people_retention_days_exercise: int = Field(
        90, ge=1, description="Exercise incidents: days after closure (the debrief and its report).",
    )
    people_retention_days_test: int = Field(7, ge=1, description="Test incidents: days after closure.")

    @field_validator("people_retention_years_by_category")
    @classmethod
    def _known_categories(cls, value: dict[str, int]) -> dict[str, int]:
        from services.shared.events import Category

        known = {c.value for c in Category}
        for category, years in value.items():
            if category not in known:
                raise ValueError(f"{category!r} is not a category (one of {', '.join(sorted(known))})")
            if not 1 <= years <= 100:
                raise ValueError(f"{category}: years must be 1 to 100, not {years}")
        return value

    # --- Local infrastructure (muster dev) -----------------------------------------------
    home: Path = Field(REPO_ROOT / ".muster", description="Local data, logs and the jar cache (git-ignored).")
    cache_dir: Path = Field(REPO_ROOT / ".muster" / "cache", description="Downloaded Kafka jars (git-ignored).")
    kafka_version: str = Field("4.0.0", description="Apache Kafka version run by `muster dev up`.")
    kafka_heap: str = Field("512m", description="Heap of the local broker.")
    pg_port: int = Field(5432, description="Port of the local PostgreSQL started by `muster dev up`.")

    # --- Projector ----------------------------------------------------------------------
    projector_metrics_port: int = Field(9103, description="Port of the projector's /metrics (0: not served).")
    projector_consumer_group: str = Field(
        "muster-projector", description="Consumer group of the projector; its offsets are kept in PostgreSQL."
    )
    projector_instance_id: str | None = Field(
        None, description="Static group membership id of one projector instance (a restart rejoins at once)."
    )
    projector_batch_max_records: int = Field(
        5000, ge=1, description="Most records the projector writes in one transaction."
    )
    projector_retry_max_seconds: float = Field(
        10.0, gt=0, description="Longest wait between the projector's retries while the database is unavailable."
    )

    # --- Authentication (every HTTP service) ----------------------------------------------
    jwt_secret: SecretStr = Field(
        SecretStr(LOCAL_DEV_JWT_SECRET),
        description="HS256 key for bearer tokens when no JWKS file is set. The default is for local "
        "development only: a service bound to a non-loopback host refuses it.",
    )
    jwt_jwks_file: Path | None = Field(
        None, description="JWKS file of the identity provider's public keys; when set, tokens must be RS256 "
        "(and MUSTER_JWT_ISSUER and MUSTER_JWT_AUDIENCE must be set)."
    )
    jwt_issuer: str | None = Field(
        None, description="Required `iss` of every token (checked when set; required with a JWKS file)."
    )
    jwt_audience: str | None = Field(
        None, description="Required `aud` of every token (checked when set; required with a JWKS file)."
    )
    jwt_max_lifetime_s: int = Field(
        12 * 3600, ge=60, description="Longest token lifetime accepted (exp - iat, and exp - now); a longer one is 401."
    )

    # --- Intake API ----------------------------------------------------------------------
    intake_host: str = Field("127.0.0.1", description="Address the intake API listens on.")
    intake_port: int = Field(8000, description="Port of the intake API.")
    intake_id_key: SecretStr = Field(
        SecretStr(LOCAL_DEV_ID_KEY),
        description="HMAC key of the ids intake derives (a keyed request's event_id, a new incident's id: "
        "services/shared/ids.py). The same for every intake replica and kept across restarts. The default is for "
        "local development only: intake bound to a non-loopback host refuses it (e.g. openssl rand -hex 32).",
    )
    intake_publish_timeout_s: float = Field(
        5.0, gt=0, description="How long intake waits for the broker to acknowledge before answering 503."
    )
    intake_batch_max: int = Field(1000, ge=1, description="Most events in one POST /v1/events:batch.")
    intake_max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body intake reads; larger ones get 413."
    )

    # --- Stream processors (escalation, tension, casework) ---------------------------------
    processor_stall_seconds: float = Field(
        30.0, ge=0,
        description="Progress watchdog: a partition with records waiting and no committed progress for this "
        "long (the broker answering, the group settled) stops the worker with exit status 3, for its "
        "supervisor to restart it (faust-streaming's stall after a rejoin). 0 turns it off.",
    )

    # --- Escalation processor ------------------------------------------------------------
    escalation_rules_file: Path = Field(
        REPO_ROOT / "services" / "escalation" / "rules.yaml",
        description="Escalation rules (YAML), validated at start-up.",
    )
    escalation_metrics_port: int = Field(9101, description="Port of the escalation processor's /metrics.")
    escalation_app_id: str = Field(
        "muster-escalation", description="Faust app id of the escalation processor (its consumer group; prefixed)."
    )
    escalation_instance_id: str | None = Field(
        None,
        description="Static consumer-group member id of this escalation worker (default: the host name); "
        "a restarted worker takes its place at once. Give each worker on one host its own.",
    )
    escalation_tick_seconds: float = Field(
        1.0, gt=0, description="How often the escalation processor checks acknowledgement deadlines."
    )
    escalation_closed_retention_seconds: float = Field(
        86400.0, gt=0,
        description="How long the escalation processor keeps a finished incident (compacted: its escalations' "
        "ids, status and source offset, for late facts and replays) before releasing it from its table.",
    )
    escalation_cap_sender: str = Field(
        "escalation@muster.partnership.example", description="CAP <sender> of escalation alerts."
    )
    escalation_cap_contact: str = Field(
        "Partnership control room, 24h, via the duty officer's line",
        description="CAP <contact> of escalation alerts: who responders call about one.",
    )

    intake_cors_origins: str = Field(
        "http://127.0.0.1:8001,http://localhost:8001",
        description="Origins (comma-separated) whose pages may call the intake API from a browser: the board's.",
    )

    # --- Query API and board -------------------------------------------------------------
    query_host: str = Field("127.0.0.1", description="Address the query API and the board listen on.")
    query_port: int = Field(8001, description="Port of the query API and the board.")
    contract_file: Path = Field(
        REPO_ROOT / "asyncapi.yaml",
        description="asyncapi.yaml, with its schemas/ beside it: the query service renders it at /contract.",
    )
    query_database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL of the query service's own role (muster_query, SELECT only, row-level "
        "security). Unset: MUSTER_DATABASE_URL with the user replaced by muster_query.",
    )
    projector_migrate_on_start: bool = Field(
        True, description="Whether `muster run projector` applies pending migrations (with MUSTER_DATABASE_URL, the "
        "owner's) before it starts; production runs them as a job instead and gives the projector no owner URL.",
    )
    projector_database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL of the projector's own role (muster_projector: writes the status store, owns "
        "nothing). Unset: MUSTER_DATABASE_URL with the user replaced by muster_projector.",
    )
    intake_database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL of intake's own role (muster_intake: its schema `intake` only). Unset: "
        "MUSTER_DATABASE_URL with the user replaced by muster_intake.",
    )
    query_pool_size: int = Field(10, ge=1, description="Most database connections the query service holds.")
    intake_url: str = Field(
        "http://127.0.0.1:8000", description="URL of the intake API as the board's browser reaches it."
    )

    # --- Services ------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Log level of every service.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="json outside a terminal, console in one, unless set."
    )

    # --- Simulator and `muster run all` -----------------------------------------------------
    simulate_api_url: str = Field(
        "http://127.0.0.1:8000", description="Intake API that `muster simulate --sink api` posts to."
    )
    simulate_token: SecretStr | None = Field(
        None, description="Bearer token for `muster simulate --sink api` (a secret; or pass --token)."
    )
    run_day_seconds: float = Field(
        150.0, gt=0, description="How many real seconds `muster run all` takes to play its simulated day."
    )

    # --- Tension processor -----------------------------------------------------------------
    tension_config_file: Path = Field(
        REPO_ROOT / "services" / "tension" / "tension.yaml",
        description="Tension scoring configuration (weights, windows, baseline, levels), YAML.",
    )
    tension_metrics_port: int = Field(9102, description="Port of the tension processor's /metrics.")
    tension_app_id: str = Field(
        "muster-tension", description="Faust app id of the tension processor (its consumer group; prefixed)."
    )
    tension_instance_id: str | None = Field(
        None,
        description="Static consumer-group member id of this tension worker (default: the host name); "
        "a restarted worker takes its place at once. Give each worker on one host its own.",
    )

    # --- Casework processor ----------------------------------------------------------------
    casework_config_file: Path = Field(
        REPO_ROOT / "services" / "casework" / "casework.yaml",
        description="Casework configuration (ASB Case Review thresholds, premises rules, closure clocks), YAML.",
    )
    casework_metrics_port: int = Field(9104, description="Port of the casework processor's /metrics.")
    casework_app_id: str = Field(
        "muster-casework", description="Faust app id of the casework processor (its consumer group; prefixed)."
    )
    casework_instance_id: str | None = Field(
        None,
        description="Static consumer-group member id of this casework worker (default: the host name); "
        "give each worker on one host its own.",
    )

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options shared by every aiokafka client (producer, consumer, admin)."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
                certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
                keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
            )
        if self.kafka_sasl:
            username, password = self.kafka_credentials()
            options["sasl_mechanism"] = self.kafka_sasl
            options["sasl_plain_username"] = username
            options["sasl_plain_password"] = password
        return options

    @property
    def kafka_sasl(self) -> str | None:
        """The SASL mechanism clients use: MUSTER_KAFKA_SASL_MECHANISM on a SASL protocol, else None (a
        PLAINTEXT or SSL connection has no SASL, whatever the mechanism setting says)."""
        return self.kafka_sasl_mechanism if self.kafka_security_protocol.startswith("SASL_") else None

    @property
    def kafka_credentials_path(self) -> Path:
        """The local broker's SCRAM credentials, one per principal (written by `muster dev up`, mode 0600)."""
        return self.kafka_credentials_file or self.home / "kafka" / "credentials.json"

    def kafka_credentials(self) -> tuple[str | None, str | None]:
        """(user, password): MUSTER_KAFKA_SASL_USERNAME/PASSWORD when set, else the local broker's
        credentials of MUSTER_KAFKA_PRINCIPAL."""
        if self.kafka_sasl_username:
            password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            return self.kafka_sasl_username, password
        password = _local_passwords(self.kafka_credentials_path).get(self.kafka_principal)
        if password is None:  # a copy with another home (its own PostgreSQL) talks to the same broker
            password = self._home_passwords.get(self.kafka_principal)
        return self.kafka_principal, password

    @model_validator(mode="before")
    @classmethod
    def _no_sasl_without_sasl(cls, data):
        """PLAINTEXT or SSL has no SASL mechanism (so MUSTER_KAFKA_SECURITY_PROTOCOL=PLAINTEXT alone suffices)."""
        if isinstance(data, dict):
            protocol = data.get("kafka_security_protocol") or data.get("KAFKA_SECURITY_PROTOCOL")
            if protocol in ("PLAINTEXT", "SSL") or data.get("kafka_sasl_mechanism") == "":
                data = {k: v for k, v in data.items() if k.lower() != "kafka_sasl_mechanism"}
                data["kafka_sasl_mechanism"] = None
        return data

    def model_post_init(self, _context) -> None:
        self._home_passwords = _local_passwords(self.kafka_credentials_path)

    def as_principal(self, principal: str) -> "Settings":
        """These settings authenticated as one service's own principal (unless a user name is set)."""
        if self.kafka_sasl_username:
            return self
        return self.model_copy(update={"kafka_principal": principal})


def _local_passwords(path: Path) -> dict[str, str]:
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
