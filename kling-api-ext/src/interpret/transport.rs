//! Failures below HTTP: what a reqwest error says about whether the request
//! left.

use crate::error::{Error, Operation, TransportKind};
use crate::lifecycle::TaskId;

/// Whether a connect error's causes say the name did not resolve (hyper-util's
/// resolver reports "dns error", the system's "failed to lookup address").
fn is_dns_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Classifies a reqwest error.
pub(crate) fn transport(
    operation: Operation,
    task_id: Option<TaskId>,
    error: reqwest::Error,
) -> Error {
    let kind = if error.is_connect() && is_dns_failure(&error) {
        TransportKind::Dns
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_body() || error.is_request() || error.is_decode() {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    // Only a failed connection proves the request was not sent; a connect
    // timeout is reported by reqwest as both connect and timeout.
    let may_have_reached_server = !error.is_connect();
    // reqwest's message names the URL: keep its host and path for the reader,
    // never a presigned query.
    let mut error = error;
    if let Some(url) = error.url_mut() {
        url.set_query(None);
        url.set_fragment(None);
        let _ = url.set_password(None);
    }
    Error::Transport {
        operation,
        subject: None,
        task_id,
        kind,
        may_have_reached_server,
        source: error,
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[test]
    fn a_name_that_does_not_resolve_is_told_from_a_refused_connection() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let dns = Outer(std::io::Error::other(
            "dns error: failed to lookup address information: Name or service not known",
        ));
        assert!(is_dns_failure(&dns));
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_dns_failure(&refused));
        assert_eq!(
            TransportKind::Dns.to_string(),
            "could not resolve the host name"
        );
    }
}
