//! Where a video goes: the output path checked before anything is paid for,
//! the download, the result document, and the command that resumes a task.

use std::path::{Path, PathBuf};

use kling_api_ext::{Error, Field, Task, TaskId};
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::output::shell_quote;
use crate::ui;

/// The command that picks a task up again and writes its video to `out`.
pub(crate) fn resume_command(id: &TaskId, out: Option<&Path>, force: bool) -> String {
    match out {
        Some(out) => format!(
            "kling wait {} --out {}{}",
            shell_quote(id.as_str()),
            shell_quote(&out.display().to_string()),
            if force { " --force" } else { "" }
        ),
        None => format!("kling wait {}", shell_quote(id.as_str())),
    }
}

pub(crate) async fn download(
    ctx: &Context,
    task: &Task,
    out: &Path,
) -> Result<kling_api_ext::Downloaded, Error> {
    let bar = ui::bytes_bar(&ctx.out, "download");
    // Free and restartable: Ctrl-C stops it (the partial file goes with it).
    let cancel = ctx.interrupt.token();
    let saved = tokio::select! {
        saved = ctx.client.download(task, out).options(kling_api_ext::upload::TransferOptions::new().progress(ui::feed(&bar))) => saved,
        _ = cancel.cancelled() => Err(Error::Cancelled { task_id: task.task_id.clone() }),
    };
    bar.finish_and_clear();
    saved
}

pub(crate) fn default_out(id: &TaskId) -> PathBuf {
    // Task ids are opaque: keep only what is safe in a file name.
    let safe: String = id
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!("{safe}.mp4"))
}

pub(crate) fn result_document(
    task: &Task,
    saved: Option<&kling_api_ext::Downloaded>,
) -> serde_json::Value {
    json!({
        "taskId": task.task_id.as_str(),
        "state": task.state.as_str(),
        "resultUrls": task.result_urls.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "output": saved.map(|s| s.path.display().to_string()),
        "bytes": saved.map(|s| s.bytes),
        "sha256": saved.map(|s| s.sha256.clone()),
        "costTime": task.cost_time.map(|d| d.as_secs_f64()),
    })
}

/// Checks, before anything is sent or paid for, that the video can be saved
/// at `out`: its directory exists and takes a new file (the download writes a
/// temporary file there and renames it), and no file is replaced unless
/// `force`.
pub(crate) fn check_out_path(out: &Path, force: bool) -> Result<(), CliError> {
    let invalid = |reason: String| CliError::Invalid {
        field: Field::Download,
        subject: Some(out.display().to_string()),
        reason,
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(invalid(format!(
            "the directory {} does not exist",
            parent.display()
        )));
    }
    if out.is_dir() {
        return Err(invalid(
            "this is a directory; give a file name such as avatar.mp4".into(),
        ));
    }
    if out.exists() && !force {
        return Err(invalid(
            "the file exists; pass --force to replace it, or give another --out".into(),
        ));
    }
    // The one sure test of "writable" (permissions, a read-only mount, /proc).
    if let Err(e) = tempfile::Builder::new()
        .prefix(".kling-check.")
        .tempfile_in(parent)
    {
        return Err(invalid(format!(
            "a file cannot be written in {}: {e}",
            parent.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_queries_are_not_shown() {
        let url = "https://bucket.example.com/v.mp3?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
            .parse()
            .unwrap();
        assert_eq!(
            kling_api_ext::error::safe_url(&url),
            "https://bucket.example.com/v.mp3?[query hidden]"
        );
        let plain = "https://cdn.example.com/face.png".parse().unwrap();
        assert_eq!(
            kling_api_ext::error::safe_url(&plain),
            "https://cdn.example.com/face.png"
        );
    }

    #[test]
    fn default_output_names_are_safe() {
        assert_eq!(
            default_out(&TaskId::new("c420e5").unwrap()),
            PathBuf::from("c420e5.mp4")
        );
        assert_eq!(
            default_out(&TaskId::new("../../etc/x").unwrap()),
            PathBuf::from("______etc_x.mp4")
        );
    }
}
