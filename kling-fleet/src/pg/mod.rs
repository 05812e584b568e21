//! The PostgreSQL schema every shared store uses (`kling`: the rate limit,
//! the batch job store, learned speeds, store identity), its one migrator,
//! and a pool that never hangs a caller.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use kling_api_ext::limit::LimiterError;

mod speed;

pub use speed::share_speed;

/// How long an ask waits for a connection or a statement before it fails (and
/// the creation is not sent): a database outage never hangs a submit.
const PATIENCE: Duration = Duration::from_secs(10);

/// The migrations, in order, embedded in the binary: the one list for the
/// whole `kling` schema, recorded in `kling._migrations`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "rate limit",
        include_str!("../../migrations/0001_rate_limit.sql"),
    ),
    (2, "jobs", include_str!("../../migrations/0002_jobs.sql")),
    (3, "speed", include_str!("../../migrations/0003_speed.sql")),
    (4, "nonce", include_str!("../../migrations/0004_nonce.sql")),
    (
        5,
        "identity",
        include_str!("../../migrations/0005_identity.sql"),
    ),
];

/// Until 0.1 the `kling` CLI migrated its tables (versions 2-5 here) with a
/// migrator of its own, recorded in `kling._cli_migrations` as 1-4. A
/// database migrated then is adopted: its rows move here, shifted by one, so
/// those migrations are not run twice (same SQL, so same checksums).
const ADOPT: &str = r#"
DO $adopt$
BEGIN
    PERFORM pg_advisory_xact_lock(7291504337163925001);
    IF to_regclass('kling._cli_migrations') IS NOT NULL THEN
        CREATE TABLE IF NOT EXISTS kling._migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
            success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL,
            execution_time BIGINT NOT NULL
        );
        INSERT INTO kling._migrations
            (version, description, installed_on, success, checksum, execution_time)
        SELECT version + 1, description, installed_on, success, checksum, execution_time
        FROM kling._cli_migrations
        ON CONFLICT (version) DO NOTHING;
        DROP TABLE kling._cli_migrations;
    END IF;
END
$adopt$;
"#;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Creates or migrates the whole `kling` schema in the database `pool`
/// reaches: what [`PgLimiter`](crate::PgLimiter) does on first use, and the
/// `kling` CLI's job store on connecting. Safe to run from many processes at
/// once (the migrator takes an advisory lock); its record is
/// `kling._migrations`, apart from an application's `_sqlx_migrations`.
///
/// ```no_run
/// # async fn demo() -> Result<(), kling_api_ext::limit::LimiterError> {
/// let pool = kling_fleet::pg::pool("postgres:///kling?host=/run/postgresql")?;
/// kling_fleet::pg::migrate(&pool).await?;
/// # Ok(()) }
/// ```
pub async fn migrate(pool: &PgPool) -> Result<(), LimiterError> {
    sqlx::raw_sql(ADOPT.into_sql_str())
        .execute(pool)
        .await
        .map_err(|e| LimiterError::new(format!("cannot adopt the kling CLI's migrations: {e}")))?;
    let mut migrator = Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    migrator.create_schema("kling");
    migrator.dangerous_set_table_name("kling._migrations");
    migrator
        .run(pool)
        .await
        .map_err(|e| LimiterError::new(format!("cannot create or migrate the kling schema: {e}")))
}

/// A lazily connected pool on the database at `url`: at most 4 connections,
/// each statement bounded by 10 s and each wait for a connection too, so an
/// outage fails calls instead of hanging them. The error never repeats the
/// URL (it may hold a password).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert!(kling_fleet::pg::pool("postgres:///kling?host=/run/postgresql").is_ok());
/// let error = kling_fleet::pg::pool("postgres://u:s3cret@h:port/db").unwrap_err();
/// assert!(!error.to_string().contains("s3cret"));
/// # }
/// ```
pub fn pool(url: &str) -> Result<PgPool, LimiterError> {
    let options = PgConnectOptions::from_str(url).map_err(|_| {
        // Not the URL itself: it may hold a password.
        LimiterError::new(
            "the database URL cannot be read: give postgres://USER:PASSWORD@HOST/DB or postgres:///DB?host=/SOCKET/DIR",
        )
    })?;
    let options = options.options([("statement_timeout", millis(PATIENCE).to_string())]);
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(PATIENCE)
        .connect_lazy_with(options))
}
