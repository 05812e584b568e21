//! One file per command; `steps` holds what `generate`, `submit`, `wait`
//! and `download` share. (`kling batch` is `crate::batch`.)

pub mod completions;
pub mod credits;
pub mod download;
pub mod generate;
pub mod history;
pub mod login;
mod save;
pub mod sim;
pub mod spec;
pub mod status;
pub mod steps;
pub mod submit;
pub mod upload;
pub mod version;
pub mod wait;
