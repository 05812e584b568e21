//! Secrets as errors and logs show them: never. A presigned URL's query is
//! its credential, a database URL may carry a password (as `user:pw@` or as
//! `?password=`), and a service may echo the API key. [`redact`] is the one
//! function every message that quotes outside text goes through.

use std::sync::{PoisonError, RwLock};

/// What a hidden secret is replaced with.
const HIDDEN: &str = "[redacted]";

/// Secrets this process knows (the API key, a webhook key, a database
/// password): replaced wherever they appear.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Query and keyword parameters whose value is a credential, outside
/// http(s) URLs too (a libpq keyword string, a `postgres://` URL's query).
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "signature",
    "sig",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "secret",
];

/// Registers a secret to hide from every message [`redact`] passes: the
/// [`crate::ClientBuilder`] registers the API key, the `kling-fleet` crate's
/// receiver its webhook key; an application may add its own. Texts shorter than 8 characters are
/// not registered (they would hide ordinary words, or a URL's scheme).
///
/// ```
/// kling_api_ext::error::register_secret("s3cr3t-pa55");
/// assert_eq!(kling_api_ext::redact("login with s3cr3t-pa55"), "login with [redacted]");
/// ```
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < 8 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
        // Longest first: a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// A text as messages, logs and JSON errors may show it:
/// - every registered secret ([`register_secret`]) replaced;
/// - every http(s) URL without its query, fragment and password
///   ([`safe_url`]), JSON-escaped ones (`https:\/\/`) included;
/// - every URL of another scheme (`postgres://`, `s3://`) without its
///   password, and with the values of credential parameters (`password=`,
///   `X-Amz-Signature=`, `token=`…) hidden; the same parameters hidden
///   anywhere else in the text (a libpq keyword string);
/// - a `Bearer` token hidden.
///
/// ```
/// use kling_api_ext::redact;
/// assert_eq!(
///     redact("got https://b.example.com/v.mp3?X-Amz-Signature=abc back"),
///     "got https://b.example.com/v.mp3?[query hidden] back"
/// );
/// assert_eq!(
///     redact("postgres://kling:hunter22@db/kling and postgres:///kling?host=/run&password=hunter22"),
///     "postgres://kling:***@db/kling and postgres:///kling?host=/run&password=***"
/// );
/// ```
pub fn redact(text: &str) -> String {
    // URLs first, so a password in one is shown as `***` like any other.
    let mut shown = if text.contains("://") || text.contains(":\\/\\/") {
        hide_urls(text)
    } else {
        text.to_owned()
    };
    if shown.contains('=') {
        shown = hide_secret_params(&shown);
    }
    {
        let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
        for secret in secrets.iter() {
            if shown.contains(secret.as_str()) {
                shown = shown.replace(secret.as_str(), HIDDEN);
            }
        }
    }
    if let Some(at) = find_ignore_case(&shown, "bearer ") {
        let start = at + "bearer ".len();
        let end = shown[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
            .map_or(shown.len(), |e| start + e);
        if end > start {
            shown.replace_range(start..end, HIDDEN);
        }
    }
    shown
}

fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    text.to_ascii_lowercase().find(needle)
}

/// A URL as messages and logs show it: without its query, fragment and
/// password. A presigned URL's query is its credential (an S3 or OSS
/// signature); it never goes into an error or a log line.
///
/// ```
/// let url = url::Url::parse("https://b.example.com/v.mp3?X-Amz-Signature=abc").unwrap();
/// assert_eq!(kling_api_ext::error::safe_url(&url), "https://b.example.com/v.mp3?[query hidden]");
/// ```
pub fn safe_url(url: &url::Url) -> String {
    if url.query().is_none() && url.fragment().is_none() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?[query hidden]");
    }
    text
}

/// Every `scheme://…` in `text`, shown safely.
fn hide_urls(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let plain = rest.find("://").map(|i| (i, 3));
        let escaped = rest.find(":\\/\\/").map(|i| (i, 5));
        let Some((sep, sep_len)) = [plain, escaped].into_iter().flatten().min() else {
            break;
        };
        // The scheme: letters, digits, '+', '-', '.' before "://".
        // Past the last character that cannot be in a scheme, whatever its
        // width in bytes (an answer's body may be any text).
        let scheme_start = rest[..sep]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let tail = &rest[sep + sep_len..];
        let end = url_end(tail, sep_len == 5);
        shown.push_str(&rest[..scheme_start]);
        let scheme = &rest[scheme_start..sep];
        let after = &tail[..end];
        shown.push_str(&safe_any_url(scheme, &rest[sep..sep + sep_len], after));
        rest = &tail[end..];
    }
    shown.push_str(rest);
    shown
}

/// Where a URL that starts `tail` ends. In JSON-escaped text (`escaped`),
/// `\/` belongs to the URL and any other backslash ends it.
fn url_end(tail: &str, escaped: bool) -> usize {
    let bytes = tail.as_bytes();
    for (i, c) in tail.char_indices() {
        let stop = match c {
            '\\' => !(escaped && bytes.get(i + 1) == Some(&b'/')),
            '"' | '\'' | '<' | '>' | '`' | ')' | ']' => true,
            c => c.is_whitespace(),
        };
        if stop {
            return i;
        }
    }
    tail.len()
}

/// One URL, split as `scheme` `sep` (`://` or `:\/\/`) `after`.
fn safe_any_url(scheme: &str, sep: &str, after: &str) -> String {
    let lower = scheme.to_ascii_lowercase();
    // userinfo: "user:password@" before the first '/', '?' or '#'.
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, path) = after.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{user}:***{}", &authority[at..]),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path.split('#').next().unwrap_or(path), None),
    };
    let mut text = format!("{scheme}{sep}{authority}{path}");
    if let Some(query) = query {
        if matches!(lower.as_str(), "http" | "https") {
            // A presigned URL's whole query is its credential.
            text.push_str("?[query hidden]");
        } else {
            let query = query.split('#').next().unwrap_or(query);
            text.push('?');
            text.push_str(&hide_secret_params(query));
        }
    }
    text
}

/// `key=value` with a credential key: the value becomes `***`.
fn hide_secret_params(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for key in SECRET_KEYS {
        let pattern = format!("{key}=");
        let mut from = 0;
        while let Some(found) = lower[from..].find(&pattern) {
            let at = from + found;
            from = at + pattern.len();
            // A whole key: not the tail of a longer name ("nosig=").
            let whole = at == 0
                || !lower[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !whole {
                continue;
            }
            let start = from;
            let end = text[start..]
                .find(|c: char| {
                    c.is_whitespace()
                        || matches!(c, '&' | '"' | '\'' | '<' | '>' | ';' | ',' | '\\')
                })
                .map_or(text.len(), |e| start + e);
            if end > start && &text[start..end] != "***" {
                cuts.push((start, end));
            }
        }
    }
    if cuts.is_empty() {
        return text.to_owned();
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut shown = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in cuts {
        if start < last {
            continue;
        }
        shown.push_str(&text[last..start]);
        shown.push_str("***");
        last = end;
    }
    shown.push_str(&text[last..]);
    shown
}

/// A text with every URL in it shown as [`redact`] shows it (kept for the
/// callers that quote what the service sent).
pub(crate) fn hide_url_queries(text: &str) -> String {
    redact(text)
}

/// [`safe_url`] for a text that may be a URL (anything else is redacted as
/// any text).
pub(crate) fn safe_url_text(text: &str) -> String {
    match url::Url::parse(text) {
        // Only a URL that writes its host: the parser turns `https:///a.png`
        // into `https://a.png/`, which is not what the user wrote.
        Ok(url) if matches!(url.scheme(), "http" | "https") && written_host(text).is_ok() => {
            safe_url(&url)
        }
        _ => redact(text),
    }
}

/// The host as written in `text` (`scheme://[user@]HOST[:port]/...`), or
/// why there is none. The URL parser is lenient: it reads `https:///a.png`
/// and `https:a.png` as the host `a.png`, inventing a host the text never
/// gave; this reads what was written.
pub(crate) fn written_host(text: &str) -> Result<&str, String> {
    let text = text.trim();
    let Some((_, rest)) = text.split_once(':') else {
        return Err("it is not an absolute URL".into());
    };
    let Some(rest) = rest.strip_prefix("//") else {
        return Err("write it as scheme://HOST/PATH (the two slashes and a host)".into());
    };
    let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host.starts_with('[') {
        &host[..host.find(']').map_or(host.len(), |end| end + 1)]
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(host, _)| host)
    };
    if host.is_empty() {
        return Err(format!(
            "the URL has no host (nothing between `//` and the path{}); write it as scheme://HOST/PATH",
            match url::Url::parse(text)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                Some(invented) => format!(": a URL parser would take `{invented}` for the host"),
                None => String::new(),
            }
        ));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the property test: a character of more than one byte right
    /// before `://` cut the text inside that character.
    #[test]
    fn a_wide_character_before_a_scheme_is_kept_whole() {
        assert_eq!(redact("\u{FFFD}://x"), "\u{FFFD}://x");
        assert_eq!(
            redact("é·https://h/p?sig=s3cret"),
            "é·https://h/p?[query hidden]"
        );
    }

    #[test]
    fn presigned_queries_are_hidden_in_any_text() {
        for (text, shown) in [
            (
                "a https://b.example.com/x.png?X-Amz-Signature=abc&y=1 b",
                "a https://b.example.com/x.png?[query hidden] b",
            ),
            (
                r#"{"image_url":"https:\/\/b.example.com\/x.png?X-Amz-Signature=abc"}"#,
                r#"{"image_url":"https:\/\/b.example.com\/x.png?[query hidden]"}"#,
            ),
            (
                "<a href='https://u:pw@h.example/p?s=1'>",
                "<a href='https://u:***@h.example/p?[query hidden]'>",
            ),
            (
                "s3://bucket/key?X-Amz-Signature=abc&part=2",
                "s3://bucket/key?X-Amz-Signature=***&part=2",
            ),
            ("no url here", "no url here"),
            ("https://h.example/a.png", "https://h.example/a.png"),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn database_passwords_are_hidden_in_every_form() {
        for (text, shown) in [
            (
                "postgres://kling:pw-9@db.example:5432/kling",
                "postgres://kling:***@db.example:5432/kling",
            ),
            (
                "postgresql:///kling?host=/tmp/s&password=pw-9&user=k",
                "postgresql:///kling?host=/tmp/s&password=***&user=k",
            ),
            (
                "host=/tmp user=k password=pw-9 dbname=kling",
                "host=/tmp user=k password=*** dbname=kling",
            ),
            (
                "postgres:///kling?host=/tmp/s",
                "postgres:///kling?host=/tmp/s",
            ),
        ] {
            assert_eq!(redact(text), shown, "{text}");
        }
    }

    #[test]
    fn registered_secrets_and_bearer_tokens_are_hidden() {
        register_secret("sk-unit-test-7f3e");
        register_secret("abc");
        assert_eq!(
            redact("key sk-unit-test-7f3e echoed; abc stays"),
            "key [redacted] echoed; abc stays"
        );
        assert_eq!(
            redact("Authorization: Bearer tok-123 sent"),
            "Authorization: Bearer [redacted] sent"
        );
        // A registered password inside a URL is shown as any URL password.
        register_secret("pw-in-url-42");
        assert_eq!(
            redact("postgres://u:pw-in-url-42@h/db"),
            "postgres://u:***@h/db"
        );
        // Words that merely end like a key are left alone.
        assert_eq!(redact("nosig=1 design=2"), "nosig=1 design=2");
    }
}
