//! The small commands: status, upload, credits, completions, version, sim.

use std::io::Write as _;

use clap::CommandFactory as _;
use kling_api_ext::{Error, TaskId};
use serde_json::json;

use crate::cli::{Cli, CompletionsArgs, Shell, SimArgs, TaskArgs, UploadArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::error::code;
use crate::output::Out;
use crate::ui;

pub fn task_id(text: &str) -> Result<TaskId, Error> {
    Ok(TaskId::new(text.trim())?)
}

pub async fn status(ctx: &Context, args: TaskArgs) -> Result<u8, Error> {
    let task = ctx.client.get(&task_id(&args.task_id)?).await?;
    if ctx.out.json {
        ctx.out
            .document(&serde_json::to_value(&task).expect("serializable"));
    } else {
        let mut text = format!("{} {}", task.task_id, task.state);
        if let Some(url) = task.video_url() {
            text.push_str(&format!("\nvideo: {url}"));
        }
        if let Some(t) = task.cost_time {
            text.push_str(&format!("\ntook: {:.0} s", t.as_secs_f64()));
        }
        if let (Some(code), msg) = (&task.fail_code, &task.fail_msg) {
            text.push_str(&format!(
                "\nfailed: {code} {}",
                msg.as_deref().unwrap_or("")
            ));
        }
        ctx.out.text(&text);
    }
    Ok(code::OK)
}

pub async fn upload(ctx: &Context, args: UploadArgs) -> Result<u8, Error> {
    let bar = ui::bytes_bar(&ctx.out, "upload");
    let uploaded = ctx
        .client
        .upload_file_with_progress(&args.path, Some(ui::feed(&bar)))
        .await;
    bar.finish_and_clear();
    let uploaded = uploaded?;
    if ctx.out.json {
        ctx.out
            .document(&serde_json::to_value(&uploaded).expect("serializable"));
    } else {
        ctx.out.text(uploaded.url.as_str());
    }
    Ok(code::OK)
}

pub async fn credits(ctx: &Context) -> Result<u8, Error> {
    let credits = ctx.client.credits().await?;
    if ctx.out.json {
        ctx.out.document(&json!({"credits": credits}));
    } else {
        ctx.out.text(&format!("{credits}"));
    }
    Ok(code::OK)
}

pub fn completions(args: CompletionsArgs) -> u8 {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kling", &mut script);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&script);
    code::OK
}

pub fn version(out: &Out) -> u8 {
    let models: Vec<&str> = kling_api_ext::Model::ALL
        .iter()
        .map(|m| m.as_str())
        .collect();
    let info = json!({
        "kling": env!("CARGO_PKG_VERSION"),
        "userAgent": kling_api_ext::DEFAULT_USER_AGENT,
        "api": {"spec": "spec/ai-avatar-v1-pro.json", "version": "1.0.0", "baseUrl": kling_api_ext::kling_api::DEFAULT_BASE_URL,
                "uploadBaseUrl": kling_api_ext::kling_api::DEFAULT_UPLOAD_BASE_URL},
        "models": models,
    });
    if out.json {
        out.document(&info);
    } else {
        out.text(&format!(
            "kling {} (API document 1.0.0, {})\nmodels: {}",
            env!("CARGO_PKG_VERSION"),
            kling_api_ext::kling_api::DEFAULT_BASE_URL,
            models.join(", ")
        ));
    }
    code::OK
}

pub async fn sim(out: &Out, args: SimArgs) -> u8 {
    let config = match &args.config {
        Some(path) => match kling_sim::SimConfig::from_file(path) {
            Ok(config) => config,
            Err(e) => return out.usage(&e),
        },
        None => kling_sim::SimConfig::default(),
    };
    let sim = match kling_sim::Simulator::builder()
        .config(config)
        .port(args.port)
        .start()
        .await
    {
        Ok(sim) => sim,
        Err(e) => {
            return out.error(&CliError::Invalid {
                field: kling_api_ext::Field::Config,
                subject: Some(format!("127.0.0.1:{}", args.port)),
                reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                    format!(
                        "port {} is already in use (another kling sim?); choose another with --port, or --port 0 for any free one",
                        args.port
                    )
                } else {
                    format!("cannot listen: {e}")
                },
            });
        }
    };
    if out.json {
        out.document(&json!({"baseUrl": sim.base_url(), "uploadBaseUrl": sim.upload_base_url(), "apiKey": sim.api_key()}));
    } else {
        out.text(&format!(
            "SIMULATED service (kling-sim), Ctrl-C to stop\nexport APIKLEY_BASE_URL={}\nexport APIKLEY_UPLOAD_BASE_URL={}\nexport APIKLEY_API_KEY={}",
            sim.base_url(),
            sim.upload_base_url(),
            sim.api_key()
        ));
    }
    let _ = tokio::signal::ctrl_c().await;
    let stats = sim.stats();
    out.say(&format!(
        "stopped after {} tasks ({} requests)",
        stats.tasks_created,
        stats.requests.values().sum::<u64>()
    ));
    code::OK
}

fn select(
    records: Vec<crate::history::Record>,
    args: &crate::cli::HistoryArgs,
) -> Vec<crate::history::Record> {
    records
        .into_iter()
        .filter(|r| args.state.as_ref().is_none_or(|s| &r.state == s))
        .take(args.limit)
        .collect()
}

/// `kling history`: the paid requests, newest first.
pub fn history(out: &Out, args: &crate::cli::HistoryArgs) -> u8 {
    crate::history::show(out, &select(crate::history::read(), args));
    code::OK
}

/// `kling history --refresh`: reads the state of unfinished tasks first (of
/// this service only), records it, then lists.
pub async fn refresh_history(ctx: &Context, args: &crate::cli::HistoryArgs) -> Result<u8, Error> {
    let base = ctx
        .client
        .base_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    for record in crate::history::read()
        .iter()
        .filter(|r| crate::history::unfinished(r) && r.base_url.trim_end_matches('/') == base)
        .take(args.limit.max(1) * 4)
    {
        let Some(id) = record
            .task_id
            .as_deref()
            .and_then(|t| kling_api_ext::TaskId::new(t).ok())
        else {
            continue;
        };
        match ctx.client.get(&id).await {
            Ok(task) => ctx.history.state(&record.reference, task.state.as_str()),
            Err(e) => ctx.out.warn(&format!("task {id}: {e}")),
        }
    }
    crate::history::show(&ctx.out, &select(crate::history::read(), args));
    Ok(code::OK)
}

/// `kling login`: reads a key from standard input (one line) and stores it in
/// a file only the user can read (0600), where later commands find it when no
/// other key is given. With a profile whose `api_key_file` is set, the key
/// goes to that file.
pub fn login(out: &Out, profile: Option<&crate::config::Selected>) -> u8 {
    use std::io::IsTerminal as _;
    let profile_file = profile.and_then(|p| p.profile.api_key_file.clone());
    let Some(path) = profile_file.or_else(crate::config::login_key_path) else {
        return out.usage("no home directory to keep the key in: set KLING_CONFIG_DIR");
    };
    if std::io::stdin().is_terminal() {
        out.say("paste your Apikley API key and press Enter:");
    }
    let mut key = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut key) {
        return out.usage(&format!("cannot read the key: {e}"));
    }
    let key = key.trim();
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return out.usage("the key is empty or has spaces in it: nothing was stored");
    }
    let written = (|| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Replaced whole: a crash or a full disk keeps the key stored before.
        let line = format!("{key}\n");
        crate::atomic::write(&path, line.as_bytes(), crate::atomic::Access::Private)
    })();
    match written {
        Ok(()) => {
            if out.json {
                out.document(&json!({"keyFile": path.display().to_string()}));
            } else {
                out.say(&format!(
                    "the key is stored in {} (mode 600); kling uses it when no other key is given",
                    path.display()
                ));
            }
            code::OK
        }
        Err(e) => out.error(&CliError::local(path, e)),
    }
}
