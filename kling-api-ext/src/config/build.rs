//! [`ClientBuilder::build`]: every setting checked, then the HTTP clients,
//! the generated clients and the creation limiter put together.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use secrecy::ExposeSecret;
use url::Url;

use super::{ClientBuilder, DEFAULT_USER_AGENT, ENV_API_KEY, LimiterChoice, install_tls_provider};
use crate::client::{Client, Inner};
use crate::error::{Error, Field, Result};
use crate::limit::{AccountKey, CreationLimiter};

impl ClientBuilder {
    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        install_tls_provider();
        let config = |reason: String| Error::invalid(Field::Config, None, reason);
        let key = self
            .api_key
            .ok_or_else(|| config(format!("no API key: set {ENV_API_KEY} or call api_key()")))?;
        let key_text = key.expose_secret();
        // Hidden from every message from now on: a service, a proxy or a
        // library may echo it back.
        crate::error::register_secret(key_text);
        if key_text.trim().is_empty() {
            return Err(config("the API key is empty".into()));
        }
        if key_text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            // The key itself is never echoed.
            return Err(config(
                "the API key contains white space or control characters".into(),
            ));
        }
        let base_url = parse_base_url("base URL", &self.base_url).map_err(config)?;
        let upload_base_url =
            parse_base_url("upload base URL", &self.upload_base_url).map_err(config)?;
        if self.user_agent.trim().is_empty() {
            return Err(config("the User-Agent cannot be empty".into()));
        }
        let upload_path = self.upload_path.trim().to_owned();
        if upload_path.is_empty() || upload_path.starts_with('/') || upload_path.ends_with('/') {
            return Err(config(format!(
                "upload path {upload_path:?}: give a folder without leading or trailing slashes"
            )));
        }
        if let Some(limit) = self.rate_limit
            && (limit.max == 0 || limit.window.is_zero())
        {
            return Err(config(
                "the rate limit needs max > 0 and a window > 0".into(),
            ));
        }
        if self
            .credits_per_second
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            return Err(config(
                "credits per second must be a finite number >= 0".into(),
            ));
        }

        let mut auth = HeaderValue::from_str(&format!("Bearer {key_text}"))
            .map_err(|_| config("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&self.user_agent)
                .map_err(|_| config("the User-Agent is not a valid header value".into()))?,
        );

        let build_http = |pooled: bool| {
            let builder = reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.request_timeout)
                .user_agent(self.user_agent.clone());
            // createTask gets a connection of its own each time: on a pooled
            // one, a server closing it as idle just as the request arrives
            // leaves the outcome unknown (the task may exist). A handshake
            // per creation is cheap next to that; reads keep the pool.
            let builder = if pooled {
                builder
            } else {
                builder.pool_max_idle_per_host(0)
            };
            builder
                .build()
                .map_err(|e| config(format!("cannot build the HTTP client: {e}")))
        };
        let (http, create_http) = match self.http {
            Some(client) => (client.clone(), client),
            None => (build_http(true)?, build_http(false)?),
        };
        let api = kling_api::Client::new_with_client(
            base_url.as_str().trim_end_matches('/'),
            http.clone(),
            headers.clone(),
        );
        let api_create = kling_api::Client::new_with_client(
            base_url.as_str().trim_end_matches('/'),
            create_http.clone(),
            headers.clone(),
        );
        let upload = kling_api::upload::Client::new_with_client(
            upload_base_url.as_str().trim_end_matches('/'),
            http.clone(),
            headers.clone(),
        );
        let user_agent = headers
            .get(USER_AGENT)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_USER_AGENT));
        let limiter: Option<Arc<dyn CreationLimiter>> = match (self.rate_limit, self.limiter) {
            (None, _) => None,
            (Some(limit), LimiterChoice::Process) => {
                Some(crate::limit::shared(key_text, base_url.as_str(), limit))
            }
            (Some(limit), LimiterChoice::PerAccount(make)) => Some(
                (make.0)(&AccountKey::new(key_text, base_url.as_str()), limit)
                    .map_err(|e| config(format!("the rate limiter: {e}")))?,
            ),
            (Some(_), LimiterChoice::Custom(limiter)) => Some(limiter),
        };
        // A creation's request ends within its timeouts; its slot's lease
        // covers that with a margin, so only a dead holder's slot lapses.
        let create_lease = self.connect_timeout + self.request_timeout + Duration::from_secs(10);
        Ok(Client {
            inner: Arc::new(Inner {
                api_key: key.clone(),
                api,
                api_create,
                upload,
                http,
                create_http,
                auth_headers: headers,
                base_url,
                upload_base_url,
                model: self.model,
                credits_per_second: self.credits_per_second,
                rate_limit: limiter.as_ref().map(|l| l.limit()),
                limiter,
                limiter_gate: tokio::sync::Mutex::new(()),
                create_lease,
                retry: self.retry,
                upload_path,
                preflight: self.preflight,
                transfer_timeout: self.transfer_timeout,
                durations: Default::default(),
                uploads: Default::default(),
                user_agent,
            }),
        })
    }
}

fn parse_base_url(what: &str, text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{what} {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{what} {text:?}: use an absolute http(s) URL"));
    }
    crate::error::written_host(text).map_err(|reason| format!("{what} {text:?}: {reason}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{what} {text:?}: no query or fragment allowed"));
    }
    Ok(url)
}
