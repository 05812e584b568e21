//! The config file: named profiles of settings (base URLs, model, key file),
//! chosen with `--profile NAME` or `KLING_PROFILE`.
//!
//! ```toml
//! [profiles.default]            # used when no profile is chosen
//! api_key_file = "~/.config/kling/prod-key"
//!
//! [profiles.staging]
//! base_url = "https://staging.example.com"
//! upload_base_url = "https://staging-upload.example.com"
//! api_key_file = "staging-key"  # relative to this file's directory
//! model = "kling/ai-avatar-standard"
//! daily_budget = 2000           # credits a UTC day (see `crate::ledger`)
//! ```
//!
//! Precedence, highest first: command-line flags; a profile chosen with
//! `--profile`/`KLING_PROFILE`; the `APIKLEY_*` environment variables; the
//! `default` profile; the key stored by `kling login`. A chosen profile beats
//! the environment so that its key file and its base URL go together: an
//! `APIKLEY_API_KEY` for one account is never sent to another profile's host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The name of the profile used when none is chosen.
pub const DEFAULT_PROFILE: &str = "default";

/// The parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Named sets of settings.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One profile; every key is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// API base URL.
    pub base_url: Option<String>,
    /// Upload base URL.
    pub upload_base_url: Option<String>,
    /// File holding the API key (`~/` and paths relative to the config file work).
    pub api_key_file: Option<PathBuf>,
    /// Model id for `generate`, `submit` and manifest lines without one.
    pub model: Option<String>,
    /// Credits a UTC day that paid requests may spend on this profile's
    /// service (`--daily-budget`).
    pub daily_budget: Option<f64>,
}

/// A profile in effect, and whether it was chosen (it then beats the
/// environment) or is the file's `default`.
#[derive(Debug, Clone)]
pub struct Selected {
    pub name: String,
    pub chosen: bool,
    pub profile: Profile,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// The config file's path: `$KLING_CONFIG`, else `config.toml` in the
/// config directory (`$KLING_CONFIG_DIR`, `$XDG_CONFIG_HOME/kling`, `~/.config/kling`).
/// The second member says whether the path was given explicitly (then it must exist).
pub fn path() -> Option<(PathBuf, bool)> {
    if let Some(file) = std::env::var_os("KLING_CONFIG").filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(file), true));
    }
    config_dir().map(|dir| (dir.join("config.toml"), false))
}

/// Reads the config file and picks the profile: `chosen` (from `--profile`
/// or `KLING_PROFILE`), else the file's `default` profile if it has one.
/// A chosen profile that does not exist, a file that does not parse, or a
/// `KLING_CONFIG` that names no file is an error naming the file.
pub fn select(chosen: Option<&str>) -> Result<Option<Selected>, String> {
    let Some((file, explicit)) = path() else {
        return match chosen {
            Some(name) => Err(format!(
                "--profile {name}: no config file (set KLING_CONFIG or HOME)"
            )),
            None => Ok(None),
        };
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return match chosen {
                Some(name) => Err(format!(
                    "--profile {name}: there is no config file {} (see `kling --help`)",
                    file.display()
                )),
                None => Ok(None),
            };
        }
        Err(e) => return Err(format!("config file {}: {e}", file.display())),
    };
    // toml's Display quotes the offending line, which may be `api_key = "…"`
    // (a key nothing has registered as secret yet): its message and place only.
    let config: ConfigFile = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        format!(
            "config file {}{}: {}",
            file.display(),
            line.map(|l| format!(", line {l}")).unwrap_or_default(),
            e.message().trim_end()
        )
    })?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let (name, is_chosen) = match chosen {
        Some(name) => (name.to_owned(), true),
        None => (DEFAULT_PROFILE.to_owned(), false),
    };
    let Some(mut profile) = config.profiles.get(&name).cloned() else {
        if !is_chosen {
            return Ok(None);
        }
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "it has none".to_owned()
        } else {
            format!("it has: {}", known.join(", "))
        };
        return Err(format!(
            "--profile {name}: no [profiles.{name}] in {} ({known})",
            file.display()
        ));
    };
    profile.api_key_file = profile.api_key_file.map(|p| resolve(&base, &p));
    Ok(Some(Selected {
        name,
        chosen: is_chosen,
        profile,
        file,
    }))
}

/// `~/x` is under the home directory; a relative path is relative to the
/// config file's directory (not to wherever `kling` runs).
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return PathBuf::from(home).join(rest);
    }
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The config directory: `$KLING_CONFIG_DIR`, else `$XDG_CONFIG_HOME/kling`,
/// else `~/.config/kling`. It holds `config.toml` and the key `kling login` stores.
pub fn config_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("KLING_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("kling")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config/kling")))
}

/// Where `kling login` keeps the key: `api-key` in [`config_dir`].
pub fn login_key_path() -> Option<std::path::PathBuf> {
    config_dir().map(|dir| dir.join("api-key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = toml::from_str::<ConfigFile>("[profiles.a]\nbase_ulr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("base_ulr"), "{e}");
    }

    #[test]
    fn key_files_resolve_against_the_config_directory() {
        let base = Path::new("/etc/kling");
        assert_eq!(resolve(base, Path::new("k")), PathBuf::from("/etc/kling/k"));
        assert_eq!(resolve(base, Path::new("/k")), PathBuf::from("/k"));
    }
}
