//! `kling sim`: the simulator, served until Ctrl-C.

use crate::cli::SimArgs;
use crate::error::CliError;
use crate::error::code;
use crate::output::Out;
use serde_json::json;

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
