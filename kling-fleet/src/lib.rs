#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Builder-style setters for the public fields of a `#[non_exhaustive]`
/// settings struct, as the SDK's.
#[cfg(feature = "receiver")]
macro_rules! setters {
    ($t:ty { $($field:ident: $ty:ty => $doc:literal),* $(,)? }) => {
        impl $t {
            $(
                #[doc = $doc]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

mod hub;
#[cfg(feature = "postgres")]
pub mod jobs;
mod limiter;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "receiver")]
pub mod receiver;
mod recover;

pub use hub::{CallbackHub, CallbackNotice, callback_url, new_nonce};
pub use limiter::FileLimiter;
#[cfg(feature = "postgres")]
pub use limiter::PgLimiter;
