//! [`PgLimiter`]: creation slots counted in PostgreSQL, shared by every host.

use std::time::Duration;

use sqlx::PgPool;

use std::sync::Arc;

use kling_api_ext::limit::{
    AccountKey, Acquire, CreationLimiter, LimitWait, LimiterError, LimiterFuture, RateLimit, SlotId,
};

/// Counts creation slots in a PostgreSQL database, so that every process on
/// every host using one account keeps one window: a product's replicas, a
/// render farm, many `kling batch --store` workers.
///
/// Slots are rows of `kling.rate_slots`, taken by one function call
/// (`kling.acquire_slot`) under the account's row lock, and every time is the
/// database's clock: the workers' clocks never matter. A worker that dies
/// holding a slot leaves it to its lease. If the database cannot be reached
/// within 10 s, the ask fails and the creation is not sent. The schema
/// (`kling`) is created and migrated on first use ([`crate::pg::migrate`]).
pub struct PgLimiter {
    pool: PgPool,
    account: AccountKey,
    limit: RateLimit,
    ready: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for PgLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool: its options hold the database password.
        f.debug_struct("PgLimiter")
            .field("account", &self.account)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl PgLimiter {
    /// A limiter keeping `limit` for `account` in the database `pool` reaches.
    pub fn new(pool: PgPool, account: &AccountKey, limit: RateLimit) -> Self {
        PgLimiter {
            pool,
            account: account.clone(),
            limit,
            ready: tokio::sync::OnceCell::new(),
        }
    }

    /// A limiter on the database at `url` (`postgres://user:password@host/db`,
    /// or `postgres:///db?host=/run/postgresql` for a socket), connected when
    /// first asked. Fails only if the URL cannot be read (the error does not
    /// repeat it: it may hold a password).
    pub fn connect_lazy(
        url: &str,
        account: &AccountKey,
        limit: RateLimit,
    ) -> Result<Self, LimiterError> {
        Ok(PgLimiter::new(crate::pg::pool(url)?, account, limit))
    }

    /// What [`ClientBuilder::rate_limiter_per_account`](kling_api_ext::ClientBuilder::rate_limiter_per_account)
    /// takes: a limiter on the database at `url` for the client's account
    /// and limit. The URL is read when the client is built.
    pub fn per_account(
        url: impl Into<String>,
    ) -> impl Fn(&AccountKey, RateLimit) -> Result<Arc<dyn CreationLimiter>, LimiterError>
    + Send
    + Sync
    + 'static {
        let url = url.into();
        move |account, limit| {
            Ok(Arc::new(PgLimiter::connect_lazy(&url, account, limit)?)
                as Arc<dyn CreationLimiter>)
        }
    }

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn ready(&self) -> Result<&PgPool, LimiterError> {
        self.ready
            .get_or_try_init(|| crate::pg::migrate(&self.pool))
            .await?;
        Ok(&self.pool)
    }
}

fn db(what: &str) -> impl FnOnce(sqlx::Error) -> LimiterError + '_ {
    move |e| LimiterError::with_source(format!("the rate-limit database: {what}"), e)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CreationLimiter for PgLimiter {
    fn limit(&self) -> RateLimit {
        self.limit
    }

    fn try_acquire(&self, lease: Duration) -> LimiterFuture<'_, Acquire> {
        Box::pin(async move {
            let pool = self.ready().await?;
            let (slot, wait_ms, paused): (Option<i64>, i64, bool) = sqlx::query_as(
                "SELECT slot, wait_ms, paused FROM kling.acquire_slot($1, $2, $3, $4)",
            )
            .bind(self.account.as_str())
            .bind(i32::try_from(self.limit.max).unwrap_or(i32::MAX))
            .bind(millis(self.limit.window))
            .bind(millis(lease))
            .fetch_one(pool)
            .await
            .map_err(db("cannot take a slot"))?;
            Ok(match slot {
                Some(id) => Acquire::Slot(SlotId::new(id.unsigned_abs())),
                None => Acquire::Wait {
                    wait: Duration::from_millis(wait_ms.max(0).unsigned_abs()),
                    why: if paused {
                        LimitWait::Paused
                    } else {
                        LimitWait::Window
                    },
                },
            })
        })
    }

    fn release(&self, slot: SlotId) -> LimiterFuture<'_, ()> {
        Box::pin(async move {
            let pool = self.ready().await?;
            sqlx::query(
                "UPDATE kling.rate_slots SET answered_at = clock_timestamp() WHERE id = $1 AND answered_at IS NULL",
            )
            .bind(i64::try_from(slot.get()).unwrap_or(i64::MAX))
            .execute(pool)
            .await
            .map_err(db("cannot release a slot"))?;
            Ok(())
        })
    }

    fn pause(&self, pause: Duration) -> LimiterFuture<'_, ()> {
        Box::pin(async move {
            let pool = self.ready().await?;
            sqlx::query(
                "INSERT INTO kling.rate_accounts (account, paused_until) \
                 VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond') \
                 ON CONFLICT (account) DO UPDATE \
                 SET paused_until = GREATEST(kling.rate_accounts.paused_until, EXCLUDED.paused_until)",
            )
            .bind(self.account.as_str())
            .bind(millis(pause))
            .execute(pool)
            .await
            .map_err(db("cannot pause"))?;
            Ok(())
        })
    }

    fn rest_of_window(&self) -> LimiterFuture<'_, Duration> {
        Box::pin(async move {
            let pool = self.ready().await?;
            let (rest,): (Option<i64>,) = sqlx::query_as(
                "SELECT ceil(extract(epoch FROM min(COALESCE(answered_at, \
                   CASE WHEN lease_until <= clock_timestamp() THEN lease_until END)) \
                   + $2 * interval '1 millisecond' - clock_timestamp()) * 1000)::bigint \
                 FROM kling.rate_slots WHERE account = $1",
            )
            .bind(self.account.as_str())
            .bind(millis(self.limit.window))
            .fetch_one(pool)
            .await
            .map_err(db("cannot read the window"))?;
            Ok(rest.filter(|ms| *ms > 0).map_or(self.limit.window, |ms| {
                Duration::from_millis(ms.unsigned_abs())
            }))
        })
    }
}
