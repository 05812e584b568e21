//! The PostgreSQL schema the shared stores use (`kling`), and its pool.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::ratelimit::LimiterError;

/// How long an ask waits for a connection or a statement before it fails (and
/// the creation is not sent): a database outage never hangs a submit.
const PATIENCE: Duration = Duration::from_secs(10);

/// The migrations, in order, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "rate limit",
    include_str!("../migrations/0001_rate_limit.sql"),
)];

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Creates or migrates the `kling` schema in the database `pool` reaches:
/// what [`crate::PgLimiter`] does on first use. Safe to run from many
/// processes at once (the migrator takes an advisory lock); its own record
/// is `kling._migrations`, apart from an application's `_sqlx_migrations`.
///
/// ```no_run
/// # async fn demo() -> Result<(), kling_api_ext::LimiterError> {
/// let pool = sqlx::PgPool::connect_lazy("postgres:///kling?host=/run/postgresql").unwrap();
/// kling_api_ext::migrate_postgres(&pool).await?;
/// # Ok(()) }
/// ```
pub async fn migrate_postgres(pool: &PgPool) -> Result<(), LimiterError> {
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
        .map_err(|e| LimiterError::with_source("cannot create or migrate the kling schema", e))
}

/// A lazily connected pool on the database at `url`: at most 4 connections,
/// each statement bounded by 10 s and each wait for a connection too, so an
/// outage fails calls instead of hanging them. The error never repeats the
/// URL (it may hold a password).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert!(kling_api_ext::postgres_pool("postgres:///kling?host=/run/postgresql").is_ok());
/// let error = kling_api_ext::postgres_pool("postgres://u:s3cret@h:port/db").unwrap_err();
/// assert!(!error.to_string().contains("s3cret"));
/// # }
/// ```
pub fn postgres_pool(url: &str) -> Result<PgPool, LimiterError> {
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
