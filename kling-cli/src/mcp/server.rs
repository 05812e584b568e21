//! The MCP protocol, by rmcp (pinned exactly: its majors churned three times
//! in 2026): the only module that sees rmcp's types. Each tool hands its
//! arguments to `tools` and turns the outcome into a structured result, or
//! an `isError` result whose structured content is a [`ToolError`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, Implementation, ProgressNotificationParam, ServerCapabilities, ServerConfig,
};
use rmcp::service::{ElicitationError, ElicitationMode, RequestContext};
use rmcp::{Json, RoleServer, ServerHandler, ServiceExt as _, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::tools::{
    Agent, CreditsOut, DownloadArgs, DownloadOut, EstimateOut, GenerateArgs, GenerateOut,
    HistoryArgs, HistoryOut, PaidArgs, StatusOut, SubmitOut, TaskArgs, VideoArgs, WaitArgs,
};
use super::{Server, ToolError};

fn outcome<T>(result: Result<T, ToolError>) -> Result<Json<T>, CallToolResult> {
    result.map(Json).map_err(|e| {
        tracing::info!(code = %e.code, message = %e.message, "tool refused or failed");
        CallToolResult::structured_error(e.json())
    })
}

/// Runs a paid call in a task of its own: if the client cancels the call or
/// goes away, it still ends as the CLI's paid commands do (a createTask on
/// the wire gets its answer, and its task id is recorded).
async fn paid<T: Send + 'static>(
    server: &Server,
    call: impl std::future::Future<Output = Result<T, ToolError>> + Send + 'static,
) -> Result<T, ToolError> {
    server.paid.spawn(call).await.unwrap_or_else(|e| {
        Err(ToolError::failed(
            "internal",
            format!("the call stopped: {e}; see `history` for its task"),
        ))
    })
}

/// The approval asked of the user (MCP elicitation).
#[derive(Debug, Deserialize, JsonSchema)]
struct Approval {
    /// Yes to spend this much on this video.
    approve: bool,
}
rmcp::elicit_safe!(Approval);

/// The connected client, for one call.
struct Caller {
    context: RequestContext<RoleServer>,
    /// Sends this call's progress notifications in order.
    progress: Option<tokio::sync::mpsc::UnboundedSender<(f64, String)>>,
    step: AtomicU64,
}

impl Caller {
    fn new(context: RequestContext<RoleServer>) -> Caller {
        let progress = context.meta.get_progress_token().map(|token| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
            let peer = context.peer.clone();
            tokio::spawn(async move {
                while let Some((progress, message)) = rx.recv().await {
                    let note = ProgressNotificationParam::new(token.clone(), progress)
                        .with_message(message);
                    if peer.notify_progress(note).await.is_err() {
                        return;
                    }
                }
            });
            tx
        });
        Caller {
            context,
            progress,
            step: AtomicU64::new(0),
        }
    }
}

impl Agent for Caller {
    fn progress(&self, _progress: f64, _total: Option<f64>, message: String) {
        // MCP wants progress to grow with every notification: a step count;
        // the message says where the call is.
        let step = self.step.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(tx) = &self.progress {
            let _ = tx.send((step as f64, message));
        }
    }

    async fn ask(&self, message: String) -> Option<bool> {
        let peer = &self.context.peer;
        if !peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
        {
            return None;
        }
        match peer.elicit::<Approval>(message).await {
            Ok(Some(answer)) => Some(answer.approve),
            Ok(None) | Err(ElicitationError::UserDeclined | ElicitationError::UserCancelled) => {
                Some(false)
            }
            Err(error) => {
                tracing::warn!(%error, "the client could not ask its user; a plan is made instead");
                None
            }
        }
    }
}

#[derive(Clone)]
struct Kling {
    server: Arc<Server>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Kling {
    /// Checks one video's inputs and gives its media facts and price.
    /// Nothing is uploaded or submitted, and nothing is spent.
    #[tool]
    async fn estimate(
        &self,
        Parameters(args): Parameters<VideoArgs>,
    ) -> Result<Json<EstimateOut>, CallToolResult> {
        outcome(self.server.estimate(args).await)
    }

    /// Makes one avatar video and saves it in the server's output directory:
    /// checks, the spend guard (cap, daily budget, balance, approval), upload,
    /// one paid createTask, a wait with progress notifications, download.
    /// Needs max_credits unless the server has a cap. An identical repeated
    /// call returns the first video instead of paying again.
    #[tool]
    async fn generate(
        &self,
        Parameters(args): Parameters<GenerateArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<GenerateOut>, CallToolResult> {
        let (server, caller) = (self.server.clone(), Caller::new(context));
        outcome(
            paid(
                &self.server,
                async move { server.generate(args, &caller).await },
            )
            .await,
        )
    }

    /// Like generate, but returns once the paid task is created: follow it
    /// with status or wait, then download.
    #[tool]
    async fn submit(
        &self,
        Parameters(args): Parameters<PaidArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<SubmitOut>, CallToolResult> {
        let (server, caller) = (self.server.clone(), Caller::new(context));
        outcome(
            paid(
                &self.server,
                async move { server.submit(args, &caller).await },
            )
            .await,
        )
    }

    /// What the service says of a task now (one status request; free).
    #[tool]
    async fn status(
        &self,
        Parameters(args): Parameters<TaskArgs>,
    ) -> Result<Json<StatusOut>, CallToolResult> {
        outcome(self.server.status(args).await)
    }

    /// Waits until a task ends, with progress notifications (free). The task
    /// keeps running after a timeout: wait again.
    #[tool]
    async fn wait(
        &self,
        Parameters(args): Parameters<WaitArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<StatusOut>, CallToolResult> {
        let caller = Caller::new(context);
        outcome(self.server.wait(args, &caller).await)
    }

    /// Saves a finished task's video in the server's output directory (free).
    #[tool]
    async fn download(
        &self,
        Parameters(args): Parameters<DownloadArgs>,
    ) -> Result<Json<DownloadOut>, CallToolResult> {
        outcome(self.server.download(args).await)
    }

    /// The account's balance, and what is left of today's budget.
    #[tool]
    async fn credits(&self) -> Result<Json<CreditsOut>, CallToolResult> {
        outcome(self.server.credits().await)
    }

    /// The newest paid requests of this machine on this service, from the
    /// spending ledger: task ids, credits, and how each was settled.
    #[tool]
    async fn history(
        &self,
        Parameters(args): Parameters<HistoryArgs>,
    ) -> Result<Json<HistoryOut>, CallToolResult> {
        outcome(self.server.history(args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Kling {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kling", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Kling AI Avatar videos (one portrait, one voice track, a prompt) on Apikley. \
                 Paid calls (generate, submit) spend the user's credits: call estimate first, \
                 give max_credits, and never raise a cap or retry with a new idempotency_key \
                 on your own; a refusal's code says why and what a human can do.",
            )
    }
}

/// Serves `server` on stdin/stdout until the client closes the connection.
pub async fn run(server: Arc<Server>) -> Result<(), String> {
    let kling = Kling {
        server,
        tool_router: Kling::tool_router(),
    };
    let server = kling.server.clone();
    let stop = server.ctx.interrupt.token();
    // Serving starts with the client's first request: Ctrl-C may come first.
    let running = tokio::select! {
        running = kling.serve(rmcp::transport::stdio()) => running.map_err(|e| e.to_string())?,
        () = stop.cancelled() => return Ok(()),
    };
    let ended = tokio::select! {
        ended = running.waiting() => ended.map(|_| ()).map_err(|e| e.to_string()),
        // Ctrl-C or SIGTERM: no new call; the paid ones end below.
        () = stop.cancelled() => Ok(()),
    };
    // The connection is gone: waits stop (the tasks keep running and their
    // ids are in the ledger and the history), uploads stop, and a createTask
    // on the wire gets its answer before the process exits.
    stop.cancel();
    server.paid.close();
    if !server.paid.is_empty() {
        tracing::warn!(
            calls = server.paid.len(),
            "waiting for paid calls in progress to record their tasks"
        );
    }
    server.paid.wait().await;
    ended
}
