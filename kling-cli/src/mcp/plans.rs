//! Approval plans: a paid call above the approval threshold, from a client
//! that cannot ask its user (no MCP elicitation), is refused with a plan: an
//! id bound to a hash of the request, single use, expiring. A human approves
//! it with `kling mcp approve PLAN`; the agent then repeats the call with
//! `plan_id`. Kept in `plans.jsonl` in the state directory (mode 0600),
//! appended under a lock like the ledger.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The file's name in the state directory.
pub const FILE: &str = "plans.jsonl";

/// How long a plan may wait for its approval and its use.
pub const LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Line {
    Plan {
        id: String,
        hash: String,
        service: String,
        credits: f64,
        expires: u64,
        summary: String,
    },
    Approved {
        id: String,
        at: u64,
    },
    Used {
        id: String,
        at: u64,
    },
}

/// A plan as its lines fold.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub hash: String,
    pub service: String,
    pub credits: f64,
    pub expires: u64,
    pub summary: String,
    pub approved: bool,
    pub used: bool,
}

/// Why a plan cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("there is no plan {0}")]
    Unknown(String),
    #[error(
        "plan {0} is for another request (its hash differs): a plan approves one exact request"
    )]
    OtherRequest(String),
    #[error("plan {0} approved at most {1} credits on {2}; this call is counted at {3} on {4}")]
    Exceeded(String, f64, String, f64, String),
    #[error("plan {0} has expired: plans last 15 minutes; make the call again for a new one")]
    Expired(String),
    #[error("plan {0} is not approved yet: a human approves it with `kling mcp approve {0}`")]
    NotApproved(String),
    #[error("plan {0} was used already: a plan pays for one call")]
    Used(String),
    #[error("the plans file {path}: {message}")]
    Io { path: String, message: String },
}

impl PlanError {
    /// The stable code an agent acts on.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::Unknown(_) => "plan_unknown",
            PlanError::OtherRequest(_) => "plan_mismatch",
            PlanError::Expired(_) => "plan_expired",
            PlanError::NotApproved(_) => "plan_not_approved",
            PlanError::Used(_) => "plan_used",
            PlanError::Exceeded(..) => "plan_exceeded",
            PlanError::Io { .. } => "io",
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The plans of a state directory.
#[derive(Debug, Clone)]
pub struct Plans {
    path: PathBuf,
}

impl Plans {
    /// The plans in the CLI's state directory (`service` is unused here but
    /// recorded with each plan).
    pub fn default_place(_service: &str) -> Result<Plans, String> {
        crate::history::state_dir()
            .map(|dir| Plans {
                path: dir.join(FILE),
            })
            .ok_or_else(|| "there is no state directory (set KLING_STATE_DIR or HOME)".to_owned())
    }

    #[cfg(test)]
    pub fn in_dir(dir: &std::path::Path) -> Plans {
        Plans {
            path: dir.join(FILE),
        }
    }

    fn io(&self, e: impl std::fmt::Display) -> PlanError {
        PlanError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn locked(&self) -> Result<(File, Vec<Plan>), PlanError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&self.path).map_err(|e| self.io(e))?;
        file.lock().map_err(|e| self.io(e))?;
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        file.read_to_end(&mut text).map_err(|e| self.io(e))?;
        Ok((file, fold(&text)))
    }

    fn append(&self, file: &mut File, line: &Line) -> Result<(), PlanError> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| self.io(e))?;
        bytes.insert(0, b'\n');
        bytes.push(b'\n');
        // A leading newline closes a torn line; empty lines are skipped.
        file.write_all(&bytes).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))
    }

    /// A new plan for the request `hash`.
    pub fn create(
        &self,
        hash: &str,
        service: &str,
        credits: f64,
        summary: &str,
    ) -> Result<Plan, PlanError> {
        let (mut file, _) = self.locked()?;
        let plan = Plan {
            id: format!("plan-{:016x}", fastrand::u64(..)),
            hash: hash.to_owned(),
            service: service.to_owned(),
            credits,
            expires: now_ms() + LIFETIME.as_millis() as u64,
            summary: summary.to_owned(),
            approved: false,
            used: false,
        };
        self.append(
            &mut file,
            &Line::Plan {
                id: plan.id.clone(),
                hash: plan.hash.clone(),
                service: plan.service.clone(),
                credits,
                expires: plan.expires,
                summary: plan.summary.clone(),
            },
        )?;
        Ok(plan)
    }

    /// A plan as it stands.
    pub fn peek(&self, id: &str) -> Result<Plan, PlanError> {
        let (_file, plans) = self.locked()?;
        plans
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| PlanError::Unknown(id.to_owned()))
    }

    /// Approves a plan (a human, from a terminal).
    pub fn approve(&self, id: &str) -> Result<Plan, PlanError> {
        let (mut file, plans) = self.locked()?;
        let mut plan = plans
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| PlanError::Unknown(id.to_owned()))?;
        if plan.used {
            return Err(PlanError::Used(id.to_owned()));
        }
        if now_ms() >= plan.expires {
            return Err(PlanError::Expired(id.to_owned()));
        }
        self.append(
            &mut file,
            &Line::Approved {
                id: id.to_owned(),
                at: now_ms(),
            },
        )?;
        plan.approved = true;
        Ok(plan)
    }

    /// Whether an approved plan covers this call (nothing is used up).
    pub fn check(
        &self,
        id: &str,
        hash: &str,
        credits: f64,
        service: &str,
    ) -> Result<Plan, PlanError> {
        let (_file, plans) = self.locked()?;
        usable(plans, id, hash, credits, service)
    }

    /// Uses an approved plan for this call, once.
    pub fn consume(
        &self,
        id: &str,
        hash: &str,
        credits: f64,
        service: &str,
    ) -> Result<Plan, PlanError> {
        let (mut file, plans) = self.locked()?;
        let plan = usable(plans, id, hash, credits, service)?;
        self.append(
            &mut file,
            &Line::Used {
                id: id.to_owned(),
                at: now_ms(),
            },
        )?;
        Ok(plan)
    }
}

/// The plan `id`, if it is approved, unused, unexpired, for this request,
/// service and at least these credits.
fn usable(
    plans: Vec<Plan>,
    id: &str,
    hash: &str,
    credits: f64,
    service: &str,
) -> Result<Plan, PlanError> {
    {
        let plan = plans
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| PlanError::Unknown(id.to_owned()))?;
        if plan.hash != hash {
            return Err(PlanError::OtherRequest(id.to_owned()));
        }
        if plan.used {
            return Err(PlanError::Used(id.to_owned()));
        }
        if now_ms() >= plan.expires {
            return Err(PlanError::Expired(id.to_owned()));
        }
        if !plan.approved {
            return Err(PlanError::NotApproved(id.to_owned()));
        }
        if credits > plan.credits + 1e-9 || service != plan.service {
            return Err(PlanError::Exceeded(
                id.to_owned(),
                plan.credits,
                plan.service,
                credits,
                service.to_owned(),
            ));
        }
        Ok(plan)
    }
}

fn fold(text: &[u8]) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let Ok(line) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        match line {
            Line::Plan {
                id,
                hash,
                service,
                credits,
                expires,
                summary,
            } => plans.push(Plan {
                id,
                hash,
                service,
                credits,
                expires,
                summary,
                approved: false,
                used: false,
            }),
            Line::Approved { id, .. } => {
                if let Some(p) = plans.iter_mut().find(|p| p.id == id) {
                    p.approved = true;
                }
            }
            Line::Used { id, .. } => {
                if let Some(p) = plans.iter_mut().find(|p| p.id == id) {
                    p.used = true;
                }
            }
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_approved_once_used_once_and_only_for_its_request() {
        let dir = tempfile::tempdir().unwrap();
        let plans = Plans::in_dir(dir.path());
        let plan = plans.create("h1", "svc", 600.0, "one video").unwrap();
        assert_eq!(
            plans.consume(&plan.id, "h1", 600.0, "svc"),
            Err(PlanError::NotApproved(plan.id.clone()))
        );
        plans.approve(&plan.id).unwrap();
        assert_eq!(
            plans.consume(&plan.id, "other", 600.0, "svc"),
            Err(PlanError::OtherRequest(plan.id.clone()))
        );
        // Not for more credits, nor on another service.
        assert!(matches!(
            plans.consume(&plan.id, "h1", 601.0, "svc"),
            Err(PlanError::Exceeded(..))
        ));
        assert!(matches!(
            plans.check(&plan.id, "h1", 600.0, "real"),
            Err(PlanError::Exceeded(..))
        ));
        assert!(plans.check(&plan.id, "h1", 600.0, "svc").is_ok());
        assert!(
            plans
                .consume(&plan.id, "h1", 500.0, "svc")
                .unwrap()
                .approved
        );
        assert_eq!(
            plans.consume(&plan.id, "h1", 500.0, "svc"),
            Err(PlanError::Used(plan.id.clone()))
        );
        assert_eq!(
            plans.approve("plan-nope"),
            Err(PlanError::Unknown("plan-nope".into()))
        );
    }

    #[test]
    fn an_expired_plan_cannot_be_approved_or_used() {
        let dir = tempfile::tempdir().unwrap();
        let plans = Plans::in_dir(dir.path());
        let line = Line::Plan {
            id: "plan-old".into(),
            hash: "h".into(),
            service: "svc".into(),
            credits: 1.0,
            expires: now_ms() - 1,
            summary: String::new(),
        };
        let mut file = plans.locked().unwrap().0;
        plans.append(&mut file, &line).unwrap();
        drop(file);
        assert_eq!(
            plans.approve("plan-old"),
            Err(PlanError::Expired("plan-old".into()))
        );
    }
}
