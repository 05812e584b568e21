//! Integration tests of the shared parts: the callback receiver and hub with
//! the SDK's waits and recoveries against the simulator, and the PostgreSQL
//! limiter and schema on a throwaway cluster; all on 127.0.0.1.

#[cfg(feature = "receiver")]
mod callbacks;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "receiver")]
mod receiver;
mod support;
