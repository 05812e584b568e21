//! The daily budget of a command, and a request's reservation: what the
//! CLI's paid commands and `kling mcp` hold against the ledger.

use std::time::Duration;

use super::{Entry, Ledger, LedgerError, Reserve, round};

/// The daily budget in force for a command: where it is counted, the
/// limit, and the service it counts for (a simulator's spending is not the
/// real service's).
#[derive(Clone, Debug)]
pub struct Budget {
    pub ledger: Option<Ledger>,
    pub daily: Option<f64>,
    pub service: String,
}

/// A request counted in the ledger; settled when its outcome is known.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub(super) ledger: Ledger,
    pub id: String,
}

impl Budget {
    /// What is left of today's budget, when one is set: a read, for an
    /// early refusal and the dry run (the reservation checks again).
    pub fn check(&self, credits: Option<f64>) -> Result<Option<f64>, LedgerError> {
        let Some(budget) = self.daily else {
            return Ok(None);
        };
        let ledger = self.ledger.as_ref().ok_or(LedgerError::NoPlace)?;
        let credits = credits.ok_or(LedgerError::UnknownCost { budget })?;
        let spent = ledger.spent_today(&self.service)?;
        if spent + credits > budget + 1e-9 {
            return Err(LedgerError::OverBudget {
                budget,
                spent: round(spent),
                credits: round(credits),
            });
        }
        Ok(Some(round(budget - spent)))
    }

    /// Counts a request at `credits` (its estimate, else its cap) before
    /// anything is uploaded. Without a budget the ledger still records it
    /// where there is one; a budget without a known cost is refused.
    pub fn reserve(
        &self,
        credits: Option<f64>,
        key: Option<&str>,
        by: &str,
    ) -> Result<Option<Reservation>, LedgerError> {
        let Some(ledger) = &self.ledger else {
            return match self.daily {
                Some(_) => Err(LedgerError::NoPlace),
                None => Ok(None),
            };
        };
        let credits = match (credits, self.daily) {
            (Some(c), _) => c,
            (None, Some(budget)) => return Err(LedgerError::UnknownCost { budget }),
            (None, None) => 0.0,
        };
        match ledger.reserve(&self.service, credits, self.daily, key, by) {
            Ok(id) => Ok(Some(Reservation {
                ledger: ledger.clone(),
                id,
            })),
            // Without a budget the ledger only keeps count: a full disk must
            // not stop a paid request (its id is in the journal or the
            // history, or said). With one, what cannot be counted is refused.
            Err(error @ LedgerError::Io { .. }) if self.daily.is_none() => {
                tracing::warn!(%error, "cannot count this request in the spending ledger; going on");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Counts a call with an idempotency key, or finds the identical
    /// earlier call's reservation (one locked step). The key must be
    /// recorded: a ledger that cannot be written refuses the call.
    pub fn reserve_once(
        &self,
        credits: f64,
        key: &str,
        ttl: Duration,
        by: &str,
    ) -> Result<Result<Reservation, Entry>, LedgerError> {
        let ledger = self.ledger.as_ref().ok_or(LedgerError::NoPlace)?;
        Ok(
            match ledger.reserve_once(&self.service, credits, self.daily, key, ttl, by)? {
                Reserve::New(id) => Ok(Reservation {
                    ledger: ledger.clone(),
                    id,
                }),
                Reserve::Existing(entry) => Err(entry),
            },
        )
    }

    /// Settles what the ledger holds for a task that ended: `Ok(task)` for
    /// a success, `Err(GenerationFailed)` for a failure; anything else
    /// leaves it open (its estimate counts).
    pub fn ended(&self, task_id: &str, result: &Result<kling_api_ext::Task, kling_api_ext::Error>) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        let settled = match result {
            Ok(task) if task.state == kling_api_ext::State::Success => {
                ledger.settle_task(task_id, true, task.credits_consumed)
            }
            Ok(task) if task.state == kling_api_ext::State::Fail => {
                ledger.settle_task(task_id, false, task.credits_consumed)
            }
            Err(kling_api_ext::Error::GenerationFailed { .. }) => {
                ledger.settle_task(task_id, false, None)
            }
            _ => Ok(()),
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "cannot settle the task in the spending ledger");
        }
    }
}

impl Reservation {
    /// Nothing was sent after all (refused before createTask, interrupted).
    pub fn not_sent(&self) {
        if let Err(e) = self.ledger.settle(&self.id, 0.0, "notTaken") {
            tracing::warn!(error = %e, "cannot release a reservation in the spending ledger");
        }
    }

    /// A task found for it later (a lost answer recovered by its callback).
    pub fn found(&self, task_id: &str) {
        if let Err(e) = self.ledger.task(&self.id, task_id) {
            tracing::warn!(error = %e, "cannot record the task in the spending ledger");
        }
    }
}
