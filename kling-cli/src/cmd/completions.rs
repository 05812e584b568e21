//! `kling completions SHELL`: shell completion scripts.

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::error::code;
use clap::CommandFactory as _;
use std::io::Write as _;

pub fn completions(args: CompletionsArgs) -> u8 {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kling", &mut script);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&script);
    code::OK
}
