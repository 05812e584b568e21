//! The `kling` binary against the simulator: every command, exit code, JSON
//! shape, bad input (the simulator's counters prove nothing was sent) and the
//! batch's crash safety.

mod answers;
mod batch;
mod budget;
mod commands;
mod errors;
mod fleet;
mod history;
mod lean;
mod limits;
mod local;
mod mcp;
mod money;
#[cfg(kling_probe)]
mod probe;
mod profiles;
mod seams;
mod security;
mod spec;
mod spend;
mod support;
mod waits;
mod webhooks;
