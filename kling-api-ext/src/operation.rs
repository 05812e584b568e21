//! The calls the SDK makes, and for those that are API endpoints, their
//! method and path: the one place they are written.

use std::fmt;

/// The call an error came from, and the span name of each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Checking a request before anything is sent.
    Validate,
    /// Checking a media URL with `HEAD` or a ranged `GET` before submitting.
    Preflight,
    /// `POST /api/file-stream-upload` (multipart).
    UploadStream,
    /// `POST /api/file-base64-upload`.
    UploadBase64,
    /// `POST /api/file-url-upload`.
    UploadUrl,
    /// `POST /api/v1/jobs/createTask`.
    CreateTask,
    /// `GET /api/v1/jobs/recordInfo`.
    GetTask,
    /// `GET /api/v1/chat/credit`.
    Credits,
    /// `POST /api/v1/common/download-url`.
    DownloadUrl,
    /// Waiting for a task to end (polling recordInfo).
    Wait,
    /// Downloading a result file.
    Download,
    /// Checking a callback (webhook) request.
    Callback,
}

/// Which server an endpoint is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    /// The API server (`APIKLEY_BASE_URL`).
    Api,
    /// The upload server (`APIKLEY_UPLOAD_BASE_URL`).
    Upload,
}

/// An API endpoint: what the span records, and where the request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) server: Server,
}

impl Operation {
    /// Whether the operation reads state and can be repeated without effect.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Operation::GetTask
                | Operation::Credits
                | Operation::DownloadUrl
                | Operation::Wait
                | Operation::Download
                | Operation::Preflight
        )
    }

    /// The endpoint of an API call; `None` for the steps that are not one
    /// (validation, a wait, a preflight or a download of some URL).
    pub(crate) fn endpoint(self) -> Option<Endpoint> {
        let (method, path, server) = match self {
            Operation::UploadStream => ("POST", "/api/file-stream-upload", Server::Upload),
            Operation::UploadBase64 => ("POST", "/api/file-base64-upload", Server::Upload),
            Operation::UploadUrl => ("POST", "/api/file-url-upload", Server::Upload),
            Operation::CreateTask => ("POST", "/api/v1/jobs/createTask", Server::Api),
            Operation::GetTask => ("GET", "/api/v1/jobs/recordInfo", Server::Api),
            Operation::Credits => ("GET", "/api/v1/chat/credit", Server::Api),
            Operation::DownloadUrl => ("POST", "/api/v1/common/download-url", Server::Api),
            Operation::Validate
            | Operation::Preflight
            | Operation::Wait
            | Operation::Download
            | Operation::Callback => return None,
        };
        Some(Endpoint {
            method,
            path,
            server,
        })
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Validate => "validate",
            Operation::Preflight => "preflight",
            Operation::UploadStream => "upload (stream)",
            Operation::UploadBase64 => "upload (base64)",
            Operation::UploadUrl => "upload (url)",
            Operation::CreateTask => "createTask",
            Operation::GetTask => "recordInfo",
            Operation::Credits => "credit",
            Operation::DownloadUrl => "download-url",
            Operation::Wait => "wait",
            Operation::Download => "download",
            Operation::Callback => "callback",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every endpoint is one the vendored specs define, with that method.
    #[test]
    fn endpoints_are_the_specs_paths() {
        let specs: Vec<serde_json::Value> = [
            include_str!("../../spec/ai-avatar-v1-pro.json"),
            include_str!("../../spec/get-task-details.json"),
            include_str!("../../spec/common.json"),
            include_str!("../../spec/file-upload.json"),
        ]
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
        let all = [
            Operation::UploadStream,
            Operation::UploadBase64,
            Operation::UploadUrl,
            Operation::CreateTask,
            Operation::GetTask,
            Operation::Credits,
            Operation::DownloadUrl,
        ];
        for operation in all {
            let endpoint = operation.endpoint().unwrap();
            let method = endpoint.method.to_ascii_lowercase();
            let defined = specs
                .iter()
                .any(|spec| !spec["paths"][endpoint.path][&method].is_null());
            assert!(defined, "{operation}: {endpoint:?} is in no spec");
            let upload = endpoint.path.starts_with("/api/file-");
            assert_eq!(endpoint.server == Server::Upload, upload, "{operation}");
        }
        assert_eq!(Operation::Wait.endpoint(), None);
    }
}
