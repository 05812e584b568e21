//! `kling`: generate Kling AI Avatar videos from a terminal.

#![forbid(unsafe_code)]
// Output goes through `output::Out`, which handles closed pipes and --json.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod atomic;
mod batch;
mod cli;
mod cmd;
mod config;
mod context;
mod dirlock;
mod error;
mod guard;
mod history;
mod interrupt;
mod ledger;
#[cfg(feature = "mcp")]
mod mcp;
mod output;
mod speed;
mod ui;
mod webhook;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::output::Out;

/// Logs go to stderr: `RUST_LOG` when set (any filter, e.g. `trace`), else
/// warnings, raised by `-v` (info), `-vv` (debug), `-vvv` (trace); `-q`: errors.
fn init_logging(verbose: u8, quiet: bool) {
    // Our crates at the level asked for, dependencies one level quieter: a
    // library's warning (lofty's "ID3v2 tag preceded by junk data" on every
    // ffmpeg MP3) is not the user's concern unless they ask for more.
    let (ours, theirs) = match (quiet, verbose) {
        (true, _) => ("error", "error"),
        (false, 0) => ("warn", "error"),
        (false, 1) => ("info", "warn"),
        (false, 2) => ("debug", "info"),
        _ => ("trace", "trace"),
    };
    let directives = [
        "kling",
        "kling_cli",
        "kling_api",
        "kling_api_ext",
        "kling_fleet",
        "kling_sim",
    ]
    .iter()
    .fold(theirs.to_owned(), |all, krate| {
        format!("{all},{krate}={ours}")
    });
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) if !quiet => filter,
        _ => tracing_subscriber::EnvFilter::new(directives),
    };
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| output::RedactingStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Parses the command line, noting whether the key was typed on it, and
/// fills in what the config file's profile sets (or says why it cannot).
fn parse() -> (Cli, Result<(), String>) {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| output::clap_exit(e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| output::clap_exit(e));

    let from = |name: &str| Source::of(&matches, name);
    cli.global.api_key_from_command_line = from("api_key") == Source::CommandLine;
    cli.global.graceful_interrupt = matches!(
        cli.command,
        Command::Generate(_)
            | Command::Submit(_)
            | Command::Wait(_)
            | Command::Download(_)
            | Command::Batch(_)
            | Command::Mcp(_)
    );
    if let Command::Batch(args) = &mut cli.command {
        let source = matches
            .subcommand_matches("batch")
            .and_then(|batch| batch.value_source("store"));
        args.store_from_env =
            args.store.is_some() && source == Some(clap::parser::ValueSource::EnvVariable);
    }
    let settings = apply_profile(&mut cli, &matches);
    (cli, settings)
}

fn apply_profile(cli: &mut Cli, matches: &clap::ArgMatches) -> Result<(), String> {
    let from = |name: &str| Source::of(matches, name);
    // None of these reads settings: they must work with a broken config file.
    if matches!(
        cli.command,
        Command::Completions(_) | Command::Version | Command::Spec(_)
    ) {
        return Ok(());
    }
    if cli.global.sim {
        // The simulator takes no service setting from a profile, but a daily
        // budget holds there too (an agent's loop is tried there first); a
        // config file that does not read is no reason to stop a simulation.
        if cli.global.daily_budget.is_none()
            && let Ok(Some(selected)) = config::select(cli.global.profile.as_deref())
        {
            cli.global.daily_budget = selected
                .profile
                .daily_budget
                .filter(|b| b.is_finite() && *b >= 0.0);
        }
        return Ok(());
    }
    let Some(selected) = config::select(cli.global.profile.as_deref())? else {
        return Ok(());
    };
    // Flags always win; a chosen profile beats the environment; the
    // `default` profile only fills what neither set.
    let takes = |name: &str| match from(name) {
        Source::CommandLine => false,
        Source::Environment => selected.chosen,
        Source::Unset => true,
    };
    let profile = &selected.profile;
    let global = &mut cli.global;
    if let Some(url) = &profile.base_url
        && takes("base_url")
    {
        global.base_url = Some(url.clone());
    }
    if let Some(url) = &profile.upload_base_url
        && takes("upload_base_url")
    {
        global.upload_base_url = Some(url.clone());
    }
    if let Some(file) = &profile.api_key_file
        && from("api_key_file") != Source::CommandLine
        && takes("api_key")
    {
        global.api_key_file = Some(file.clone());
        global.api_key = None;
    }
    if let Some(budget) = profile.daily_budget
        && from("daily_budget") == Source::Unset
    {
        if !budget.is_finite() || budget < 0.0 {
            return Err(format!(
                "config file {}, [profiles.{}] daily_budget: give a number of credits, 0 or more",
                selected.file.display(),
                selected.name
            ));
        }
        global.daily_budget = Some(budget);
    }
    if let Some(id) = &profile.model {
        let model = cli::parse_model(id).map_err(|e| {
            format!(
                "config file {}, [profiles.{}] model: {e}",
                selected.file.display(),
                selected.name
            )
        })?;
        let slot = match &mut cli.command {
            Command::Generate(args) => Some(&mut args.inputs.model),
            Command::Submit(args) => Some(&mut args.inputs.model),
            Command::Batch(args) => Some(&mut args.model),
            _ => None,
        };
        if let Some(slot) = slot
            && slot.is_none()
        {
            *slot = Some(model);
        }
    }
    tracing::debug!(profile = %selected.name, file = %selected.file.display(), "config profile in effect");
    cli.global.selected_profile = Some(selected);
    Ok(())
}

/// Where an option's value came from, the command line first.
#[derive(PartialEq)]
enum Source {
    CommandLine,
    Environment,
    Unset,
}

impl Source {
    /// Global options may sit before or after the subcommand: both are looked at.
    fn of(matches: &clap::ArgMatches, name: &str) -> Source {
        use clap::parser::ValueSource;
        let mut all = vec![matches.value_source(name)];
        if let Some((_, sub)) = matches.subcommand() {
            all.push(sub.value_source(name));
        }
        if all.contains(&Some(ValueSource::CommandLine)) {
            Source::CommandLine
        } else if all.contains(&Some(ValueSource::EnvVariable)) {
            Source::Environment
        } else {
            Source::Unset
        }
    }
}

fn main() -> ExitCode {
    // A config file error is said once the output is set up (it may be --json).
    let (cli, settings) = parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    // Under `kling mcp`, stdout is the protocol's: even an error before the
    // server starts is said on stderr, never as a JSON document there.
    let out = match cli.command {
        cli::Command::Mcp(_) => Out::new(false, true, cli.global.quiet),
        _ => Out::new(cli.global.json, cli.global.no_json, cli.global.quiet),
    };
    if let Err(reason) = settings {
        return ExitCode::from(out.usage(&reason));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return ExitCode::from(out.usage(&format!("cannot start the runtime: {e}"))),
    };
    let code = runtime.block_on(run(cli, out));
    // Everything that matters was awaited. A thread blocked reading stdin
    // (`kling mcp` after Ctrl-C, the confirmation question) must not keep
    // the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    ExitCode::from(code)
}

/// A flag or command this build has no feature for: refused before
/// anything else, naming the feature (exit 2).
fn missing_feature(cli: &Cli) -> Option<error::CliError> {
    let missing = |what: &str, feature: &str| Some(error::CliError::missing_feature(what, feature));
    if !cfg!(feature = "mcp") && matches!(cli.command, Command::Mcp(_)) {
        return missing("kling mcp", "mcp");
    }
    if !cfg!(feature = "postgres") {
        if let Command::Batch(args) = &cli.command
            && (args.store.is_some() || args.status)
        {
            return missing(if args.status { "--status" } else { "--store" }, "postgres");
        }
        if matches!(
            cli.global.rate_limit_store,
            Some(cli::LimitStore::Postgres(_))
        ) {
            return missing("--rate-limit-store postgres://…", "postgres");
        }
    }
    if !cfg!(feature = "webhooks") {
        let listen = match &cli.command {
            Command::Generate(args) => args.webhook.listen.is_some(),
            Command::Batch(args) => args.webhook.listen.is_some(),
            Command::Mcp(args) => args.webhook.listen.is_some(),
            _ => false,
        };
        if listen {
            return missing("--listen", "webhooks");
        }
    }
    None
}

async fn run(cli: Cli, out: Out) -> u8 {
    if let Some(error) = missing_feature(&cli) {
        return out.error(&error);
    }
    let global = cli.global;
    match cli.command {
        Command::Completions(args) => return cmd::completions::completions(args),
        Command::Version => return cmd::version::version(&out),
        Command::Spec(args) => return cmd::spec::spec(&out, args).await,
        Command::Login => return cmd::login::login(&out, global.selected_profile.as_ref()),
        Command::Sim(args) => return cmd::sim::sim(&out, args).await,
        // A human approving an agent's plan: no key needed.
        #[cfg(feature = "mcp")]
        Command::Mcp(cli::McpArgs {
            command: Some(cli::McpCommand::Approve { plan }),
            ..
        }) => return mcp::approve(&out, &plan),
        // Reading the history needs no key; refreshing it does.
        Command::History(args) if !args.refresh => return cmd::history::history(&out, &args),
        // The fleet's state, from its store alone: no key needed.
        #[cfg(feature = "postgres")]
        Command::Batch(args) if args.status => {
            return match batch::status(out, &args).await {
                Ok(code) => code,
                Err(failure) => out.failure(&failure),
            };
        }
        _ => {}
    }
    let preflight = match &cli.command {
        Command::Generate(args) => !args.inputs.no_preflight,
        Command::Submit(args) => !args.inputs.no_preflight,
        _ => true,
    };
    // A fleet's workers count the rate limit in their store too, unless told otherwise.
    let fleet_store = match &cli.command {
        Command::Batch(args) if global.rate_limit_store.is_none() && !global.sim => {
            args.store.clone()
        }
        _ => None,
    };
    let customize = |b: kling_api_ext::ClientBuilder| {
        let b = b.preflight(preflight);
        match &fleet_store {
            #[cfg(feature = "postgres")]
            Some(url) => b.rate_limiter_per_account(kling_fleet::PgLimiter::per_account(url)),
            _ => b,
        }
    };
    let ctx = match context::build(&global, out, customize).await {
        Ok(ctx) => ctx,
        Err(e) => return out.error(&e),
    };
    // The simulator's speed says nothing about the service's: not kept.
    let learning = (!ctx.simulated).then(|| ctx.client.clone());
    if let Some(client) = &learning {
        speed::load(client);
    }
    let result = match cli.command {
        Command::Generate(args) => cmd::generate::generate(&ctx, args).await,
        Command::Submit(args) => cmd::submit::submit_only(&ctx, args).await,
        Command::Status(args) => cmd::status::status(&ctx, args).await.map_err(Into::into),
        Command::Wait(args) => cmd::wait::wait_cmd(&ctx, args).await,
        Command::Download(args) => cmd::download::download_cmd(&ctx, args).await,
        Command::Upload(args) => cmd::upload::upload(&ctx, args).await.map_err(Into::into),
        Command::Credits => cmd::credits::credits(&ctx).await.map_err(Into::into),
        Command::Batch(args) => batch::run(ctx, args).await,
        #[cfg(feature = "mcp")]
        Command::Mcp(args) => mcp::serve(ctx, args).await,
        #[cfg(not(feature = "mcp"))]
        Command::Mcp(_) => unreachable!("refused by missing_feature"),
        Command::History(args) => cmd::history::refresh_history(&ctx, &args)
            .await
            .map_err(Into::into),
        Command::Completions(_)
        | Command::Version
        | Command::Spec(_)
        | Command::Sim(_)
        | Command::Login => {
            unreachable!("handled above")
        }
    };
    if let Some(client) = &learning {
        speed::save(client);
    }
    match result {
        Ok(code) => code,
        Err(failure) => out.failure(&failure),
    }
}
