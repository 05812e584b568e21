//! The guard on spending: before anything is uploaded or submitted, the
//! estimate is held against `--max-credits`, the account's balance and, on a
//! terminal, the user's confirmation. `--dry-run` stops after the checks.

use std::io::IsTerminal as _;

use kling_api_ext::{ApiErrorKind, Error};

use crate::cli::Spend;
use crate::context::Context;
use crate::error::CliError;

/// What the guard decided.
#[derive(Debug, PartialEq)]
pub enum Go {
    /// Go on: upload and submit.
    Ahead,
    /// `--dry-run`: everything was checked; send nothing.
    DryRun,
}

/// Holds `estimate` (credits, `None` when unknown) for `what` against the
/// limits. Nothing has been sent when it refuses.
pub async fn check(
    ctx: &Context,
    spend: &Spend,
    estimate: Option<f64>,
    what: &str,
) -> Result<(Go, Option<f64>), CliError> {
    if let (Some(max), Some(estimate)) = (spend.max_credits, estimate)
        && estimate > max
    {
        return Err(CliError::config(
            Some(format!("--max-credits {max}")),
            format!(
                "{what} is estimated at {estimate} credits, above the limit you set; nothing was sent"
            ),
        ));
    }
    // The balance: a read, free; a failure to read it does not stop the job.
    let balance = match estimate {
        Some(_) => match read_balance(ctx).await {
            Ok(balance) => Some(balance),
            // A key the service refuses will not upload or submit either.
            Err(
                e @ Error::Api {
                    kind: ApiErrorKind::Unauthorized,
                    ..
                },
            ) => return Err(e.into()),
            Err(e) => {
                ctx.out.warn(&format!(
                    "cannot read the balance to compare with the estimate ({e}); going on"
                ));
                None
            }
        },
        None => None,
    };
    if let (Some(balance), Some(estimate)) = (balance, estimate)
        && balance < estimate
    {
        return Err(CliError::BalanceTooLow {
            balance,
            estimate,
            what: what.to_owned(),
        });
    }
    if spend.dry_run {
        return Ok((Go::DryRun, balance));
    }
    if let Some(estimate) = estimate
        && estimate > spend.confirm_above
        && !spend.yes
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && !confirm(ctx, estimate, what).await
    {
        return Err(CliError::config(
            None,
            format!("{what} ({estimate} credits) was not confirmed; nothing was sent"),
        ));
    }
    Ok((Go::Ahead, balance))
}

/// The balance, with a status line while it is read (retries can take a while).
async fn read_balance(ctx: &Context) -> Result<f64, Error> {
    let line = crate::ui::spinner(&ctx.out, "credits", "reading the balance");
    let read = ctx.client.credits().await;
    line.finish_and_clear();
    read
}

/// Asks on the terminal; anything but yes is no.
async fn confirm(ctx: &Context, estimate: f64, what: &str) -> bool {
    ctx.out.say(&format!(
        "{what} is estimated at {estimate} credits. Go ahead? [y/N] (--yes skips this question)"
    ));
    tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).ok()?;
        Some(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(false)
}
