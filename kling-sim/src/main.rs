//! `kling-sim`: run the simulator in the foreground.

use std::path::PathBuf;

use clap::Parser;
use kling_sim::{SimConfig, Simulator};

/// A local simulator of the Apikley Kling AI Avatar API, on 127.0.0.1 only.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// JSON config file (see the crate docs for its keys).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => match SimConfig::from_file(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("kling-sim: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => SimConfig::default(),
    };
    let sim = match Simulator::builder()
        .config(config)
        .port(args.port)
        .start()
        .await
    {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("kling-sim: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return std::process::ExitCode::from(1);
        }
    };
    println!("kling-sim listening (SIMULATED service, no credits are spent)");
    println!("APIKLEY_BASE_URL={}", sim.base_url());
    println!("APIKLEY_UPLOAD_BASE_URL={}", sim.upload_base_url());
    println!("APIKLEY_API_KEY={}", sim.api_key());
    let _ = tokio::signal::ctrl_c().await;
    std::process::ExitCode::SUCCESS
}
