//! Contract tests: the generated `kling-api` client against the OpenAPI documents
//! in `spec/`, with httpmock standing in for the service.
//!
//! - `examples`: every example embedded in the spec files round-trips through the
//!   generated types;
//! - `schema`: the JSON Schema that schemars derives for the createTask body agrees
//!   with the spec's request schema;
//! - `behaviours`: for every operation, what the generated client returns for each
//!   way the service (or a proxy in front of it) may answer. The table of
//!   behaviours in the README is documented by these tests;
//! - `simulator`: the simulator's answers agree with the specs' response schemas;
//! - `docs`: every cited `docs/` page and section exists, and nothing cites a file
//!   outside the repository.

mod behaviours;
mod docs;
mod examples;
mod layout;
mod origin;
mod schema;
mod simulator;
mod support;
