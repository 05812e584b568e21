//! Creation limiters that many processes share: in a file for one host, in
//! PostgreSQL for many. Both decide as the SDK's own limiter does
//! ([`kling_api_ext::limit::window`]).

mod file;
#[cfg(feature = "postgres")]
mod postgres;

pub use file::FileLimiter;
#[cfg(feature = "postgres")]
pub use postgres::PgLimiter;
