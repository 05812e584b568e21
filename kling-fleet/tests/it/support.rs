//! A simulator and a client pointed at it, with quick retries.

#![allow(dead_code)]

use std::time::Duration;

use kling_api_ext::{Client, RetryPolicy};
use kling_sim::Simulator;

/// The simulator's key in these tests.
const KEY: &str = "sim-test-key";

pub(crate) async fn sim(change: impl FnOnce(&mut kling_sim::SimConfig)) -> Simulator {
    kling_testkit::sim(KEY, change).await
}

pub(crate) fn client(sim: &Simulator) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .retry(
            RetryPolicy::default()
                .max_attempts(6)
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(100))
                .time_budget(Duration::from_secs(10)),
        )
        .request_timeout(Duration::from_millis(800))
        // The simulator's limit is off in these tests.
        .rate_limit(None)
        .build()
        .unwrap()
}
