//! `kling login`: store the API key for later runs.

use crate::error::CliError;
use crate::error::code;
use crate::output::Out;
use serde_json::json;

/// `kling login`: reads a key from standard input (one line) and stores it in
/// a file only the user can read (0600), where later commands find it when no
/// other key is given. With a profile whose `api_key_file` is set, the key
/// goes to that file.
pub fn login(out: &Out, profile: Option<&crate::config::Selected>) -> u8 {
    use std::io::IsTerminal as _;
    let profile_file = profile.and_then(|p| p.profile.api_key_file.clone());
    let Some(path) = profile_file.or_else(crate::config::login_key_path) else {
        return out.usage("no home directory to keep the key in: set KLING_CONFIG_DIR");
    };
    if std::io::stdin().is_terminal() {
        out.say("paste your Apikley API key and press Enter:");
    }
    let mut key = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut key) {
        return out.usage(&format!("cannot read the key: {e}"));
    }
    let key = key.trim();
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return out.usage("the key is empty or has spaces in it: nothing was stored");
    }
    let written = (|| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Replaced whole: a crash or a full disk keeps the key stored before.
        let line = format!("{key}\n");
        crate::atomic::write(&path, line.as_bytes(), crate::atomic::Access::Private)
    })();
    match written {
        Ok(()) => {
            if out.json {
                out.document(&json!({"keyFile": path.display().to_string()}));
            } else {
                out.say(&format!(
                    "the key is stored in {} (mode 600); kling uses it when no other key is given",
                    path.display()
                ));
            }
            code::OK
        }
        Err(e) => out.error(&CliError::local(path, e)),
    }
}
