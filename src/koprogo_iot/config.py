"""All configuration in one place: `KOPROGO_*` environment variables, overridden by command-line flags."""

from __future__ import annotations

import secrets
import socket
import ssl
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from koprogo_iot.domain.retention import DEFAULT_RAW_RETENTION_MONTHS, MAX_RAW_RETENTION_MONTHS
from koprogo_iot.logs import LogFormat
from koprogo_iot.mqtt_url import client_tls

# 1883 is the standard MQTT port, usually taken by a system Mosquitto; the embedded broker stays clear of it.
EMBEDDED_MQTT_PORT = 1884
MIN_SECRET_LENGTH = 32


class Mode(StrEnum):
    EMBEDDED = "embedded"  # one process, SQLite, in-process broker: a laptop or a demo
    PRODUCTION = "production"  # external broker and PostgreSQL; secrets must be given


class MqttSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPROGO_MQTT_")

    url: str | None = Field(None, description="external broker (mqtt://user:pass@host:port); unset: embedded broker")
    host: str = Field("127.0.0.1", description="address the embedded broker listens on")
    port: int = Field(EMBEDDED_MQTT_PORT, description="port the embedded broker listens on")
    client_id: str | None = Field(
        None,
        description="ingest worker's MQTT client id (its persistent session); unset: "
        "koprogo-ingest-<host name>-<KOPROGO_INGEST_WORKER_INDEX>, one per worker",
    )
    admin_url: str | None = Field(
        None,
        description="the external broker's dynamic-security admin (mqtt://admin:pass@host:1883): device "
        "credentials are created, rotated and revoked through it, and ingest workers let in the devices a broker "
        "holds at its start (broker config --hold-devices)",
    )
    ca_file: Path | None = Field(None, description="CA certificate(s) to trust for mqtts:// (default: the system's)")
    cert_file: Path | None = Field(None, description="client certificate, for a broker that requires one")
    key_file: Path | None = Field(None, description="the client certificate's private key")
    max_packet_bytes: int = Field(
        512 * 1024,
        ge=1024,
        description="largest MQTT packet an ingest worker accepts from the broker: a bigger one is refused before it "
        "is read and the connection dropped (keep the broker's message_size_limit below it)",
    )

    def tls_context(self) -> ssl.SSLContext | None:
        """The context of the platform's TLS connections to the broker; None: the defaults of each URL."""
        if self.ca_file is None and self.cert_file is None:
            return None
        return client_tls(self.ca_file, self.cert_file, self.key_file)


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPROGO_HTTP_")

    host: str = Field("127.0.0.1", description="address the API (and a worker's metrics port) listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the API listens on")
    shutdown_timeout: float = Field(
        10.0, gt=0, description="on SIGTERM, seconds to finish requests and close WebSocket clients before stopping"
    )
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="largest request body (413 beyond); ISTA imports have their own 10 MB"
    )


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPROGO_INGEST_")

    max_payload_bytes: int = Field(16_384, gt=0, description="larger MQTT payloads are refused (payload_too_large)")
    max_clock_skew_seconds: int = Field(
        300, gt=0, description="readings timestamped further in the future are refused (timestamp_in_future)"
    )
    rate_per_sensor: float = Field(1.0, description="messages per second a sensor may send")
    burst_per_sensor: float = Field(60.0, description="messages a sensor may send at once (backlog after an outage)")
    dead_letters_per_minute: int = Field(10, description="dead letters kept per topic and reason each minute")
    dead_letters_per_organization_minute: int = Field(
        100, description="dead letters kept per organization (unknown ones together) and reason each minute"
    )
    worker_index: int = Field(
        0, ge=0, description="which of this host's ingest workers this is (0, 1, ...): ends its default MQTT client id"
    )
    metrics_port: int | None = Field(
        None, description="`ingest`: serve /metrics, /healthz and /readyz on this port (KOPROGO_HTTP_HOST's address)"
    )
    drain_seconds: float = Field(
        8.0,
        gt=0,
        description="on SIGTERM, seconds a worker has to store and acknowledge what it read before disconnecting "
        "(keep below the termination grace period)",
    )
    integrations_interval: float = Field(
        10.0, gt=0, description="seconds between two looks at the network server integrations (new, changed, status)"
    )
    release_after: float = Field(
        300.0,
        gt=0,
        description="seconds after which a live worker releases the session of an ingest worker gone meanwhile (its "
        "share, queued, is stored; the live workers then receive the whole stream); above any restart's duration",
    )


class BacnetSettings(BaseSettings):
    """`koprogo-iot bacnet`: the poller's own BACnet/IP device."""

    model_config = SettingsConfigDict(env_prefix="KOPROGO_BACNET_")

    host: str = Field("0.0.0.0", description="address the poller's BACnet/IP socket binds")
    # 47808 is BACnet/IP's port; on a host that also runs a BMS workstation (which holds it), take another one:
    # controllers answer a read to the port it came from.
    port: int = Field(47808, ge=0, le=65535, description="UDP port of the poller's socket; 0: any free port")
    device_instance: int = Field(
        4_194_300, ge=0, le=4_194_302, description="the poller's device instance, unique on the site's BACnet network"
    )
    timeout: float = Field(3.0, gt=0, description="seconds a controller has to answer before it counts as unreachable")
    refresh_interval: float = Field(60.0, gt=0, description="seconds between two reads of the points' configuration")
    metrics_port: int | None = Field(None, description="serve Prometheus metrics on this port")


class JobsSettings(BaseSettings):
    """The background jobs: rollups, window alert rules, notifier, daily maintenance, the broker's device logins."""

    model_config = SettingsConfigDict(env_prefix="KOPROGO_JOBS_")

    in_api: bool = Field(
        True, description="`api` also runs the background jobs; false where `koprogo-iot jobs` runs them"
    )
    metrics_port: int | None = Field(
        None, description="`jobs`: serve /metrics, /healthz and /readyz on this port (KOPROGO_HTTP_HOST's address)"
    )


class NotifySettings(BaseSettings):
    """The platform's alert notifications; an organization may set its own provider URLs through the API."""

    model_config = SettingsConfigDict(env_prefix="KOPROGO_NOTIFY_")

    enabled: bool = Field(True, description="run the notifier in the `up` and `api` processes")
    # apprise URL templates, `{to}` replaced by the recipient's address; unset: the channel is off unless an
    # organization configures its own provider.
    email_url: str | None = Field(
        None, description="e.g. mailtos://user:pass@smtp.example.com?from=alerts@example.com&to={to}"
    )
    sms_url: str | None = Field(None, description="e.g. twilio://SID:token@+3228887766/{to} or smseagle://t@host/{to}")
    push_url: str | None = Field(None, description="e.g. ntfys://ntfy.example.com/{to} ({to}: the user's topic)")
    public_url: str = Field("http://127.0.0.1:8000", description="where people open an alert: {public_url}/alerts/{id}")
    interval: float = Field(10.0, description="seconds between two rounds of finding alerts and delivering messages")
    reminder_interval_s: int = Field(
        4 * 3600, ge=60, description="default time between reminders of an unacknowledged, repeating alert"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPROGO_")

    mode: Mode = Field(
        Mode.EMBEDDED, description="embedded (one process, SQLite) or production (secrets and database required)"
    )
    data_dir: Path = Field(Path("data"), description="embedded mode: SQLite database and generated secrets")
    database_url: str | None = Field(None, description="postgresql://... or sqlite:///path; unset: data_dir SQLite")
    redis_url: str | None = Field(None, description="the live bus (redis://host:6379/0); unset: in-process")
    secret_key: SecretStr | None = Field(None, description="signs API tokens; generated in embedded mode")
    encryption_key: SecretStr | None = Field(
        None, description="encrypts the secrets stored (network server passwords); generated in embedded mode"
    )
    token_ttl_minutes: int = Field(12 * 60, gt=0, description="lifetime of an API token")
    raw_retention_months: int = Field(
        DEFAULT_RAW_RETENTION_MONTHS,
        ge=1,
        le=MAX_RAW_RETENTION_MONTHS,
        description="months of raw readings kept, besides the current one (rollups are kept for good); an "
        "organization may set its own through the API",
    )
    log_format: LogFormat | None = Field(
        None, description="text or json (one object per line); unset: json in production mode, text in embedded"
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="DEBUG, INFO, WARNING or ERROR")
    # Each section reads its own KOPROGO_<SECTION>_* variables when built.
    mqtt: MqttSettings = Field(default_factory=lambda: MqttSettings())
    http: HttpSettings = Field(default_factory=lambda: HttpSettings())
    ingest: IngestSettings = Field(default_factory=lambda: IngestSettings())
    notify: NotifySettings = Field(default_factory=lambda: NotifySettings())
    jobs: JobsSettings = Field(default_factory=lambda: JobsSettings())
    bacnet: BacnetSettings = Field(default_factory=lambda: BacnetSettings())

    @model_validator(mode="after")
    def _production_needs_real_services(self) -> Settings:
        if self.mode is Mode.PRODUCTION:
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < MIN_SECRET_LENGTH:
                raise ValueError(f"production mode needs KOPROGO_SECRET_KEY of at least {MIN_SECRET_LENGTH} characters")
            if self.encryption_key is None or len(self.encryption_key.get_secret_value()) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"production mode needs KOPROGO_ENCRYPTION_KEY of at least {MIN_SECRET_LENGTH} characters"
                )
            if not self.database_url:
                raise ValueError("production mode needs KOPROGO_DATABASE_URL")
        return self

    @property
    def resolved_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.JSON if self.mode is Mode.PRODUCTION else LogFormat.TEXT

    def ingest_client_id(self) -> str:
        """The ingest worker's MQTT client id: the configured one, else one per host and worker. Two workers with
        the same id take the broker session from each other (and a shared default did: `koprogo-ingest`)."""
        return self.mqtt.client_id or f"koprogo-ingest-{socket.gethostname()}-{self.ingest.worker_index}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'koprogo.db'}"

    def token_secret(self) -> str:
        """The configured secret, or (embedded mode) one generated once and kept in the data directory."""
        return self._secret(self.secret_key, "secret.key")

    def encryption_secret(self) -> str:
        """The configured encryption key, or (embedded mode) one generated once and kept in the data directory."""
        return self._secret(self.encryption_key, "encryption.key")

    def _secret(self, configured: SecretStr | None, file_name: str) -> str:
        if configured is not None:
            return configured.get_secret_value()
        path = self.data_dir / file_name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
