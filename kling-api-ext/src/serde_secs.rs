//! Durations written as seconds (a JSON number with fractions), the one form
//! every serialized duration of the SDK takes.

use std::time::Duration;

/// `Duration` → seconds.
pub(crate) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `Option<Duration>` → seconds or `null`.
pub(crate) fn option<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize(d, s),
        None => s.serialize_none(),
    }
}
