use super::*;
use kling_api_ext::error::Operation;
use kling_api_ext::{Field, State, TaskId};
use std::time::Duration;

#[test]
fn a_task_the_service_does_not_know_gets_no_resume_command() {
    let id = TaskId::new("t").unwrap();
    let not_found = Error::Api {
        operation: Operation::GetTask,
        task_id: None,
        code: 422,
        msg: "recordInfo is null".into(),
        kind: ApiErrorKind::NotFound,
        retry_after: None,
    };
    let failure = Failure::after_submit(not_found, &id, Some("kling wait t".into()));
    assert_eq!(failure.resume, None);
    assert!(hint(&failure.error).unwrap().contains("knows no task t"));
    let running = Error::WaitTimedOut {
        task_id: id.clone(),
        elapsed: Duration::ZERO,
        last_state: State::Generating,
        polls: 1,
        last_problem: None,
    };
    let failure = Failure::after_submit(running, &id, Some("kling wait t".into()));
    assert_eq!(failure.resume.as_deref(), Some("kling wait t"));
}

#[test]
fn exit_codes_follow_the_documented_table() {
    let id = TaskId::new("t").unwrap();
    let cases: Vec<(Error, u8)> = vec![
        (
            Error::InvalidInput {
                field: Field::Prompt,
                subject: None,
                reason: String::new(),
            },
            2,
        ),
        (
            Error::Api {
                operation: Operation::Credits,
                task_id: None,
                msg: String::new(),
                code: 401,
                kind: ApiErrorKind::Unauthorized,
                retry_after: None,
            },
            3,
        ),
        (
            Error::Api {
                operation: Operation::CreateTask,
                task_id: None,
                msg: String::new(),
                code: 402,
                kind: ApiErrorKind::InsufficientCredits,
                retry_after: None,
            },
            3,
        ),
        (
            Error::GenerationFailed {
                operation: None,
                task_id: Some(id.clone()),
                fail_code: None,
                fail_msg: None,
            },
            4,
        ),
        (
            Error::WaitTimedOut {
                task_id: id.clone(),
                elapsed: Duration::ZERO,
                last_state: State::Generating,
                polls: 1,
                last_problem: None,
            },
            5,
        ),
        (
            Error::SubmitOutcomeUnknown {
                cause: Box::new(Error::Cancelled {
                    task_id: id.clone(),
                }),
            },
            6,
        ),
        (Error::Cancelled { task_id: id }, 130),
    ];
    for (error, expected) in cases {
        let error = CliError::Sdk(error);
        assert_eq!(error.exit_code(), expected, "{error:?}");
    }
    let cli = [
        (CliError::config(None, "no key"), 2),
        (
            CliError::local("j.jsonl", std::io::Error::other("disk full")),
            1,
        ),
        (
            CliError::BalanceTooLow {
                balance: 1.0,
                estimate: 2.0,
                what: "this video".into(),
            },
            3,
        ),
    ];
    for (error, expected) in cli {
        assert_eq!(error.exit_code(), expected, "{error:?}");
    }
}

#[test]
fn words_are_quoted_only_when_needed() {
    assert_eq!(shell_quote("out/job-1.mp4"), "out/job-1.mp4");
    assert_eq!(shell_quote("my videos"), "'my videos'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}

#[test]
fn sizes_read_well() {
    assert_eq!(size(3768), "3.8 KB");
    assert_eq!(size(10_000_000), "10.0 MB");
    assert_eq!(size(12), "12 B");
}
