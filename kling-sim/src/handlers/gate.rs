//! The opening every API route shares (counting, faults, User-Agent, key),
//! and the answers it gives when it stops a request.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::config::{EndpointFaults, RateLimitMode};
use crate::shared::{ConnControl, Shared};

use super::*;

/// The fault drawn for one request (at most one of those that stop it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Fault {
    None,
    ResetBefore,
    ResetAfter,
    SlowAfter,
    Html502,
    Html520,
    Envelope500,
    Envelope455,
    RateLimited,
    Truncate,
}

/// Draws one fault for `endpoint`, and separately whether `msg` becomes `message`.
pub(super) fn draw(shared: &Shared, endpoint: &str, faults: &EndpointFaults) -> (Fault, bool) {
    let (roll, alias_roll) = {
        let mut rng = shared.fault_rng.lock().unwrap_or_else(|p| p.into_inner());
        (rng.f64(), rng.f64())
    };
    let table = [
        (faults.reset_before, Fault::ResetBefore, "resetBefore"),
        (faults.reset_after, Fault::ResetAfter, "resetAfter"),
        (faults.slow_after, Fault::SlowAfter, "slowAfter"),
        (faults.html502, Fault::Html502, "html502"),
        (faults.html520, Fault::Html520, "html520"),
        (faults.envelope500, Fault::Envelope500, "envelope500"),
        (faults.envelope455, Fault::Envelope455, "envelope455"),
        (faults.rate_limited, Fault::RateLimited, "rateLimited"),
        (faults.truncate, Fault::Truncate, "truncate"),
    ];
    let mut cumulative = 0.0;
    let mut fault = Fault::None;
    for (p, kind, name) in table {
        cumulative += p;
        if roll < cumulative {
            fault = kind;
            shared
                .lock()
                .faults
                .entry(format!("{endpoint}.{name}"))
                .and_modify(|n| *n += 1)
                .or_insert(1);
            break;
        }
    }
    let alias = alias_roll < faults.message_alias;
    if alias {
        *shared
            .lock()
            .faults
            .entry(format!("{endpoint}.messageAlias"))
            .or_default() += 1;
    }
    (fault, alias)
}

pub(super) const CLOUDFLARE_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>api.apikley.ru | {STATUS}: {TEXT}</title></head>\
<body><div id=\"cf-error-details\"><h1>{TEXT}</h1><span>Error code {STATUS}</span>\
<p>Visit <a href=\"https://www.cloudflare.com/\">cloudflare.com</a> for more information.</p></div></body></html>\n";

pub(super) fn html_error(status: u16) -> Response {
    let text = if status == 520 {
        "Web server is returning an unknown error"
    } else {
        "Bad gateway"
    };
    let page = CLOUDFLARE_PAGE
        .replace("{STATUS}", &status.to_string())
        .replace("{TEXT}", text);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        page,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
        .headers_mut()
        .insert("server", HeaderValue::from_static("cloudflare"));
    response
}

/// A response that never comes: the connection is reset.
pub(super) async fn reset(conn: &ConnControl) -> Response {
    conn.reset();
    std::future::pending::<()>().await;
    unreachable!("the connection was dropped")
}

// ---------------------------------------------------------------------------
// Envelopes and checks
// ---------------------------------------------------------------------------

/// The proxy refuses requests without a User-Agent (`docs/service-notes.md` §1).
pub(super) fn user_agent_refused(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let missing = headers
        .get(header::USER_AGENT)
        .is_none_or(|v| v.as_bytes().is_empty());
    (shared.config.require_user_agent && missing).then(|| {
        let mut response = (StatusCode::FORBIDDEN, "error code: 1010").into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        response
    })
}

/// The API key, if it is one of the configured ones.
pub(super) fn authorized(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let key = value.strip_prefix("Bearer ")?.trim();
    shared
        .config
        .api_keys
        .iter()
        .any(|k| k == key)
        .then(|| key.to_owned())
}

/// Pre-work faults shared by the API endpoints. `Some` answers the request.
pub(super) async fn stopping_fault(
    shared: &Shared,
    conn: &ConnControl,
    fault: Fault,
    alias: bool,
) -> Option<Response> {
    match fault {
        Fault::ResetBefore => Some(reset(conn).await),
        Fault::Html502 => Some(html_error(502)),
        Fault::Html520 => Some(html_error(520)),
        Fault::Envelope500 => Some(envelope(
            500,
            "Server exception, please try again later",
            Value::Null,
            alias,
        )),
        Fault::Envelope455 => Some(envelope(
            455,
            "The system is under maintenance, please try again later",
            Value::Null,
            alias,
        )),
        Fault::RateLimited => Some(rate_limited(
            shared,
            Duration::from_secs(1),
            shared.faults().retry_after_on_fault,
            alias,
        )),
        _ => None,
    }
}

/// A request the gate let through: the caller's key, whether `msg` is
/// written `message`, and the fault left for after the work.
pub(super) struct Admitted {
    pub(super) key: String,
    pub(super) alias: bool,
    pub(super) fault: Fault,
}

/// Which family of routes a request is on: they refuse a wrong key in their
/// own words.
#[derive(Clone, Copy)]
pub(super) enum Api {
    /// `/api/v1/...`: the job API's envelope.
    Jobs,
    /// The upload API: its envelope with `success`.
    Upload,
}

/// The opening every API route shares, in the order the service's layers
/// answer: the request is counted and its fault drawn; what a proxy in front
/// does (a reset, an HTML 5xx page) comes first; then a missing User-Agent and
/// a wrong key are refused; then the origin's own faults (envelope 500/455,
/// 429). `Err` answers the request.
pub(super) async fn gate(
    shared: &Shared,
    conn: &ConnControl,
    headers: &HeaderMap,
    endpoint: &str,
    faults: &EndpointFaults,
    api: Api,
) -> Result<Admitted, Response> {
    shared.lock().count(endpoint);
    let (fault, alias) = draw(shared, endpoint, faults);
    if matches!(fault, Fault::ResetBefore | Fault::Html502 | Fault::Html520) {
        return Err(stopping_fault(shared, conn, fault, alias)
            .await
            .expect("a stopping fault"));
    }
    if let Some(refused) = user_agent_refused(shared, headers) {
        return Err(refused);
    }
    let Some(key) = authorized(shared, headers) else {
        return Err(match api {
            Api::Jobs => envelope(
                401,
                "You do not have access permissions",
                Value::Null,
                alias,
            ),
            Api::Upload => {
                upload_envelope(401, "Authentication failed: Invalid API Key", None, alias)
            }
        });
    };
    if let Some(answer) = stopping_fault(shared, conn, fault, alias).await {
        return Err(answer);
    }
    Ok(Admitted { key, alias, fault })
}

pub(super) fn rate_limited(
    shared: &Shared,
    wait: Duration,
    with_header: bool,
    alias: bool,
) -> Response {
    shared.lock().rate_limited += 1;
    let mut response = envelope(429, "Rate limit exceeded", Value::Null, alias);
    if shared.config.rate_limit.mode == RateLimitMode::Http429 {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    if with_header {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

// ---------------------------------------------------------------------------
// createTask
// ---------------------------------------------------------------------------
