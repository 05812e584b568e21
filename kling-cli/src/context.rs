//! Turning the global options into a client (and, with --sim, a simulator).

use std::path::Path;

use kling_api_ext::{Client, ClientBuilder};
use kling_sim::Simulator;

use crate::cli::{Global, LimitStore};
use crate::error::CliError;
use crate::interrupt::Interrupt;
use crate::output::Out;

/// A client, plus the simulator it talks to in --sim mode (kept alive here).
pub struct Context {
    pub client: Client,
    pub out: Out,
    pub simulated: bool,
    /// Ctrl-C and SIGTERM: the first cancels, the second exits.
    pub interrupt: Interrupt,
    /// Where every paid request is recorded (not under `--sim`).
    pub history: crate::history::History,
    /// The daily budget and the ledger it is counted in.
    pub budget: crate::ledger::Budget,
    _sim: Option<Simulator>,
}

impl Context {
    /// The service tasks are created on, as journals record it: the base
    /// URL shown safely, or `kling --sim` for the embedded simulator (whose
    /// port changes every run).
    pub fn service(&self) -> String {
        if self.simulated {
            "kling --sim".to_owned()
        } else {
            kling_api_ext::redact(self.client.base_url().as_str().trim_end_matches('/'))
        }
    }
}

fn config_error(reason: impl Into<String>) -> CliError {
    CliError::config(None, reason)
}

/// Reads a key file, warning when others may read it.
fn read_key_file(path: &Path, out: &Out) -> Result<String, CliError> {
    let subject = Some(path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::config(
            subject.clone(),
            format!("the API key file cannot be read: {e}"),
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.warn(&format!(
                    "the API key file {} can be read by others (mode {mode:o}); run: chmod 600 {}",
                    path.display(),
                    path.display()
                ));
            }
        }
    }
    let key = text.trim().to_owned();
    if key.is_empty() {
        return Err(CliError::config(subject, "the API key file is empty"));
    }
    Ok(key)
}

pub async fn build(
    global: &Global,
    out: Out,
    customize: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Result<Context, CliError> {
    let settings = |builder: ClientBuilder| {
        let builder = builder
            .request_timeout(global.request_timeout)
            .rate_limit(global.rate_limit.0);
        // The embedded simulator lives and dies with this process: nothing to share.
        let store = match &global.rate_limit_store {
            _ if global.sim => &LimitStore::Process,
            Some(store) => store,
            None => &LimitStore::Host,
        };
        let builder = match (store, crate::history::state_dir()) {
            (LimitStore::Host, Some(dir)) => builder.rate_limiter_per_account(
                kling_fleet::FileLimiter::per_account(dir.join("ratelimit")),
            ),
            (LimitStore::Host | LimitStore::Process, _) => builder,
            #[cfg(feature = "postgres")]
            (LimitStore::Postgres(url), _) => {
                builder.rate_limiter_per_account(kling_fleet::PgLimiter::per_account(url))
            }
            // main refuses a postgres:// store in a build without it.
            #[cfg(not(feature = "postgres"))]
            (LimitStore::Postgres(_), _) => builder,
        };
        customize(builder)
    };
    if global.sim {
        let sim = Simulator::builder()
            .start()
            .await
            .map_err(|e| config_error(format!("cannot start the simulator: {e}")))?;
        // Said even with --quiet: nobody may take a simulated video for a real one.
        eprintln_always(&format!(
            "kling: SIMULATED service at {} (kling-sim): no key, no credits spent; the video is a placeholder",
            sim.base_url()
        ));
        let builder = Client::builder()
            .api_key(sim.api_key())
            .base_url(sim.base_url())
            .upload_base_url(sim.upload_base_url());
        let client = settings(builder).build()?;
        return Ok(Context {
            client,
            out,
            simulated: true,
            interrupt: Interrupt::install(out, global.graceful_interrupt),
            history: crate::history::History::new(out, false),
            budget: budget(global, "kling --sim".to_owned()),
            _sim: Some(sim),
        });
    }
    let key = match (&global.api_key_file, &global.api_key) {
        (Some(path), _) => read_key_file(path, &out)?,
        (None, Some(key)) => {
            if global.api_key_from_command_line {
                out.warn("--api-key on the command line can be seen by other users of this machine (ps, shell history); prefer APIKLEY_API_KEY or --api-key-file");
            }
            key.clone()
        }
        (None, None) => match crate::config::login_key_path().filter(|p| p.exists()) {
            // Stored by `kling login`.
            Some(path) => read_key_file(&path, &out)?,
            None => {
                return Err(config_error(
                    "no API key: run `kling login`, set APIKLEY_API_KEY, or pass --api-key-file (or try --sim)",
                ));
            }
        },
    };
    let mut builder = Client::builder().api_key(key);
    if let Some(url) = &global.base_url {
        builder = builder.base_url(url);
    }
    if let Some(url) = &global.upload_base_url {
        builder = builder.upload_base_url(url);
    }
    let client = settings(builder).build()?;
    Ok(Context {
        out,
        simulated: false,
        interrupt: Interrupt::install(out, global.graceful_interrupt),
        history: crate::history::History::new(out, true),
        budget: budget(
            global,
            kling_api_ext::redact(client.base_url().as_str().trim_end_matches('/')),
        ),
        client,
        _sim: None,
    })
}

/// The daily budget of `service` (the `service()` a context shows).
fn budget(global: &Global, service: String) -> crate::ledger::Budget {
    crate::ledger::Budget {
        ledger: crate::history::state_dir().map(|dir| crate::ledger::Ledger::in_dir(&dir)),
        daily: global.daily_budget,
        service,
    }
}

#[allow(clippy::print_stderr)]
fn eprintln_always(text: &str) {
    eprintln!("{text}");
}
