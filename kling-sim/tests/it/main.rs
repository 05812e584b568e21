//! Tests of the simulator over HTTP (raw reqwest, independent of the SDK), and
//! end-to-end tests of the SDK against it.

mod callbacks;
mod endpoints;
mod faults;
mod limits;
mod rules;
mod support;
