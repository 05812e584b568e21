//! What names a task and where it is in its life: [`TaskId`] and [`State`].
//! The vocabulary every other module speaks; it depends on none of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A text that is not a task id, and why. Becomes an
/// [`Error::InvalidInput`](crate::Error::InvalidInput) about
/// [`Field::TaskId`](crate::Field::TaskId) with `?`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid task id `{id}`: {reason}")]
pub struct InvalidTaskId {
    pub(crate) id: String,
    pub(crate) reason: &'static str,
}

impl InvalidTaskId {
    /// The text given.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

/// A task id, as createTask returns it. Opaque: documented ids look like
/// `task_kling_1765186008504`, real ones are 32 hex characters.
///
/// An id this process's createTask just returned also knows when it was
/// created (not part of its value: equality, hashing, order and serde see the
/// text only). A wait gives such a fresh task a grace to become visible
/// ([`crate::WaitOptions::not_visible_grace`]); any other id the service does
/// not know fails at once.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String, #[serde(skip)] Option<std::time::Instant>);

impl PartialEq for TaskId {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for TaskId {}

impl std::hash::Hash for TaskId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialOrd for TaskId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskId").field(&self.0).finish()
    }
}

impl TaskId {
    /// Checks and wraps a task id: 1 to 256 characters, none of them white space
    /// or control characters.
    ///
    /// ```
    /// use kling_api_ext::TaskId;
    /// assert!(TaskId::new("c420e5a6f3b84ad2b6c1e4d0a9f7b311").is_ok());
    /// assert!(TaskId::new("").is_err());
    /// assert!(TaskId::new("a b").is_err());
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidTaskId> {
        let id = id.into();
        let bad = |reason: &'static str| {
            Err(InvalidTaskId {
                id: id.clone(),
                reason,
            })
        };
        if id.is_empty() {
            return bad("a task id cannot be empty");
        }
        if id.chars().count() > 256 {
            return bad("a task id has at most 256 characters");
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("a task id has no spaces or control characters");
        }
        Ok(TaskId(id, None))
    }

    /// The same id, marked as created by this process just now.
    pub(crate) fn created_now(mut self) -> Self {
        self.1 = Some(std::time::Instant::now());
        self
    }

    /// How long ago this process created the task, when it did (an id
    /// returned by createTask, not one parsed from text).
    pub fn created_ago(&self) -> Option<std::time::Duration> {
        self.1.map(|at| at.elapsed())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for TaskId {
    type Err = InvalidTaskId;
    fn from_str(s: &str) -> Result<Self, InvalidTaskId> {
        TaskId::new(s)
    }
}

impl TryFrom<String> for TaskId {
    type Error = InvalidTaskId;
    fn try_from(s: String) -> Result<Self, InvalidTaskId> {
        TaskId::new(s)
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

/// The state of a task. Open: a state the service adds later parses as
/// [`State::Unknown`], which counts as still running.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Accepted, not yet queued.
    Waiting,
    /// Waiting for a worker.
    Queuing,
    /// Being generated.
    Generating,
    /// Finished; the result URLs are set.
    Success,
    /// Failed; the fail code and message say why.
    Fail,
    /// A state this SDK does not know, kept as sent. Treated as still running.
    Unknown(String),
}

impl State {
    /// Parses the wire value (`waiting`, `queuing`, `generating`, `success`, `fail`).
    pub fn parse(wire: &str) -> State {
        match wire {
            "waiting" => State::Waiting,
            "queuing" => State::Queuing,
            "generating" => State::Generating,
            "success" => State::Success,
            "fail" => State::Fail,
            other => State::Unknown(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            State::Waiting => "waiting",
            State::Queuing => "queuing",
            State::Generating => "generating",
            State::Success => "success",
            State::Fail => "fail",
            State::Unknown(s) => s,
        }
    }

    /// Whether the task has ended (`success` or `fail`). Unknown states have not.
    pub fn is_terminal(&self) -> bool {
        matches!(self, State::Success | State::Fail)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(State::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_unknown_is_not_terminal() {
        for s in ["waiting", "queuing", "generating", "success", "fail"] {
            assert_eq!(State::parse(s).as_str(), s);
        }
        let unknown = State::parse("pending_review");
        assert_eq!(unknown, State::Unknown("pending_review".into()));
        assert!(!unknown.is_terminal());
        assert!(State::Success.is_terminal() && State::Fail.is_terminal());
        assert!(!State::Generating.is_terminal());
    }

    #[test]
    fn a_bad_id_says_why_and_becomes_an_input_error() {
        let bad = TaskId::new("a b").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "invalid task id `a b`: a task id has no spaces or control characters"
        );
        let error = crate::Error::from(bad);
        assert_eq!(error.kind(), "invalid_input");
        assert_eq!(
            error.to_string(),
            "invalid task id `a b`: a task id has no spaces or control characters"
        );
        assert!(serde_json::from_str::<TaskId>("\"\"").is_err());
    }
}
