"""Settings: one table of name, default and help, read by the server, the CLI and docs/settings.md.

Every setting can come from the environment (``SCHEMA_ARCHITECT_<NAME>``, except ``DATABASE_URL`` and
``DIRECT_DATABASE_URL`` which keep the names every PostgreSQL host hands out) or from a ``.env`` file in
the project root. CLI flags win over both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHEMA_ARCHITECT_", extra="ignore", populate_by_name=True, env_file_encoding="utf-8"
    )

    project: Path = Field(
        default_factory=Path.cwd,
        description="Project root: the spec, the models and the embedded database live under it.",
    )
    spec_path: str = Field(
        "specs/database/schema.md", description="The schema spec, relative to the project root."
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "SCHEMA_ARCHITECT_DATABASE_URL", "database_url"),
        description="PostgreSQL URL (postgres://, postgresql://, postgresql+psycopg://). "
        "Unset: an embedded PostgreSQL under <project>/.schema-architect/ is started on first use.",
    )
    direct_database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DIRECT_DATABASE_URL", "SCHEMA_ARCHITECT_DIRECT_DATABASE_URL",
                                      "direct_database_url"),
        description="A direct (non-pooler) URL for work that holds locks or a session: explain_indexes' "
        "hypothetical index builds and propose_table's dry run. Unset: DATABASE_URL is used (both run "
        "inside one transaction, so a transaction-mode pooler works).",
    )
    embedded: bool = Field(
        True, description="Start the embedded PostgreSQL when DATABASE_URL is unset (false: tools that "
        "need a database report that none is configured)."
    )
    seed_users: int = Field(
        0, ge=0, le=1_000_000, description="Seed the embedded database with this many synthetic users when it "
        "is built from the spec (rows per table follow the foreign keys; see `schema-architect seed`). "
        "0: leave its tables empty.")
    seed_rows_per_user: int = Field(
        20, ge=1, le=100_000, description="With seeding: average rows per user in each user table (the first "
        "tenth of the users get five times as many, the rest half).")
    models: str | None = Field(
        None, description="Where the SQLModel models are: a file, a folder or a dotted module. "
        "Unset: found in the usual places (backend/models.py, backend/app/models/, ...)."
    )
    owner_column: str = Field("user_id", description="The column that says which user owns a row.")
    shared_tables: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Tables without an owner that run_scoped_query may read (comma-separated in the "
        "environment). Only list tables that hold nothing secret.",
    )
    sensitive_columns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Columns run_scoped_query shows masked (present, and their length) and refuses in "
        "filters, as `table.column` or `schema.table.column` patterns with * and ? (comma-separated in the "
        "environment). Better Auth's credential columns, and columns the spec calls sensitive or secret, "
        "are masked anyway.",
    )
    scoped_role: str | None = Field(
        None, description="A non-owner role run_scoped_query switches to (SET LOCAL ROLE). "
        "`schema-architect scoped-role` prints the DDL to create one."
    )
    refuse_owner_role: bool = Field(
        False, description="Refuse run_scoped_query when the role it runs as is a superuser, has BYPASSRLS "
        "or owns user tables without FORCE ROW LEVEL SECURITY (row security would not bind it; the query "
        "rewrite would be the only defence). Neon's default neondb_owner is such a role."
    )
    statement_timeout_ms: int = Field(5000, ge=100, description="Time limit for one scoped query.")
    pool_max_size: int = Field(5, ge=1, le=100, description="Most database connections the server holds.")
    caller_max_calls: int = Field(
        2, ge=1, le=100, description="Most database calls one caller runs at once (an HTTP session; with "
        "JWTs, one user across their sessions; stdio has one caller and no bound). A call over it waits its "
        "turn; a caller with this many calls already waiting is answered 'busy' at once.")
    pool_quick_reserve: int = Field(
        1, ge=0, le=99, description="Connections that callers whose recent calls were slow (see "
        "slow_call_s) never take: kept for quick calls, so slow callers cannot starve the others.")
    slow_call_s: float = Field(
        1.0, gt=0, description="A caller whose recent database calls held their connection this long "
        "(a moving average) counts as slow: it is served after quick callers and leaves pool_quick_reserve free.")
    connect_timeout_s: float = Field(
        20.0, gt=0, description="How long to keep retrying a database that does not answer (Neon cold "
        "starts take seconds) before reporting it unreachable."
    )
    models_timeout_s: float = Field(30.0, gt=0, description="Time limit for importing the models.")
    models_env: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Environment variables the models' child process also gets (comma-separated names, e.g. "
        "APP_ENV,FEATURE_FLAGS), beside PATH, HOME, locale, TMPDIR and VIRTUAL_ENV. Never DATABASE_URL, "
        "DIRECT_DATABASE_URL, PG* or SCHEMA_ARCHITECT_*; whatever the child prints is scrubbed of the "
        "server's secrets anyway.")
    page_bytes: int = Field(
        60_000, ge=0, description="Most JSON bytes in one tool result (about 15k tokens); a larger result "
        "is paged by table with a cursor. 0: never page (the CLI's `check` reads whole results).")

    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="HTTP beyond loopback only: the Host header values clients use (comma-separated).",
    )
    http_token: SecretStr | None = Field(
        None, description="HTTP beyond loopback only: the bearer token every request must carry.")
    jwt_jwks_url: str | None = Field(
        None, description="HTTP: verify every request's bearer token as a JWT against this JWKS (Better Auth: "
        "<app>/api/auth/jwks); run_scoped_query then reads only the rows of the token's subject.")
    jwt_issuer: str | None = Field(None, description="With jwt_jwks_url: the required `iss` claim.")
    jwt_audience: str | None = Field(None, description="With jwt_jwks_url: the required `aud` claim.")
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["EdDSA", "ES256", "RS256"],
        description="With jwt_jwks_url: the signature algorithms accepted (comma-separated; asymmetric only).")
    http_max_sessions: int = Field(
        1000, ge=1, description="HTTP: most live sessions (2025-protocol clients); a request that would open "
        "one more is answered 503.")
    http_max_sessions_per_client: int = Field(
        100, ge=1, description="HTTP: most live sessions one client holds (one bearer token or JWT, else one "
        "address); one more is answered 429.")
    http_session_idle_s: float = Field(
        600.0, gt=0, description="HTTP: a session with no request in flight for this long is closed.")
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="HTTP: a connection that has not sent a whole request head this long after "
        "it opened (or after its previous response) is closed.")
    http_body_timeout_s: float = Field(
        30.0, gt=0, description="HTTP: a request whose body stalls this long between two chunks is answered "
        "408 and its connection closed.")
    http_max_connections: int = Field(
        1000, ge=1, description="HTTP: most open connections and requests in progress; past it requests "
        "are answered 503.")
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="On SIGTERM or SIGINT: how long calls in flight get to finish before they "
        "are cancelled (their queries cancelled in PostgreSQL); then connections close, the embedded "
        "PostgreSQL stops, and the server exits 0.")

    @field_validator("shared_tables", "sensitive_columns", "allowed_hosts", "jwt_algorithms", "models_env",
                     mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("models_env")
    @classmethod
    def _no_secrets_to_models(cls, names: list[str]) -> list[str]:
        refused = [n for n in names if n.upper() in ("DATABASE_URL", "DIRECT_DATABASE_URL")
                   or n.upper().startswith(("SCHEMA_ARCHITECT_", "PG"))]
        if refused:
            raise ValueError(f"{', '.join(refused)} would hand the server's database secrets to the models' code; "
                             "list only the variables your models need at import time")
        return names

    @classmethod
    def load(cls, project: Path | None = None, **overrides: Any) -> Settings:
        """Settings from the environment and ``<project>/.env``, with explicit overrides on top."""
        root = (project or Path(overrides.pop("project", None) or Path.cwd())).resolve()
        env_file = root / ".env"
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(_env_file=env_file if env_file.is_file() else None, project=root, **given)


def settings_table() -> list[tuple[str, str, str]]:
    """(environment name, default, help) for every setting, for the CLI help and the docs."""
    rows = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env = alias.choices[0] if isinstance(alias, AliasChoices) else f"SCHEMA_ARCHITECT_{name.upper()}"
        default = "current folder" if name == "project" else (
            ",".join(field.default_factory()) or "[]" if field.default_factory is not None  # type: ignore[call-arg]
            else repr(field.default))
        rows.append((str(env), default, field.description or ""))
    return rows


#: Set when the process is to export traces (the OpenTelemetry SDK's own variables): the SDK's span per
#: message is then kept (server/app.py).
TRACING_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def render_settings_doc() -> str:
    """docs/settings.md, generated so it cannot drift from the code (tests/test_docs.py checks it)."""
    lines = [
        "# Settings",
        "",
        "Each setting comes from the environment or from `.env` in the project root; CLI flags",
        "(`--project`, `--spec`) win over both. Generated from `server/settings.py`:",
        "`python -m schema_architect.server.settings > docs/settings.md`.",
        "",
        "| variable | default | what it does |",
        "|---|---|---|",
    ]
    lines += [f"| `{env}` | `{default}` | {help_text} |" for env, default, help_text in settings_table()]
    lines += [
        "",
        "**Tracing.** The MCP SDK can wrap every message in an OpenTelemetry span. The server keeps those spans",
        "only when something records them: a tracer provider set before it starts (as `opentelemetry-instrument`",
        "does), or an exporter named in " + ", ".join(f"`{name}`" for name in TRACING_VARIABLES[:-1]),
        f"or `{TRACING_VARIABLES[-1]}`. Otherwise each span would be a no-op that still costs every call.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_settings_doc(), end="")
