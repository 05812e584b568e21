//! URLs as errors and logs show them: a presigned URL's query is its
//! credential, and never goes into a message.

/// A URL as messages and logs show it: without its query, fragment and
/// password. A presigned URL's query is its credential (an S3 or OSS
/// signature); it never goes into an error or a log line.
///
/// ```
/// let url = url::Url::parse("https://b.example.com/v.mp3?X-Amz-Signature=abc").unwrap();
/// assert_eq!(kling_api_ext::safe_url(&url), "https://b.example.com/v.mp3?[query hidden]");
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

/// A text with every http(s) URL in it shown as [`safe_url`] shows it: for
/// messages that quote what the service sent (a serde error quotes the value
/// it could not take), where a presigned URL's query may hide.
pub(crate) fn hide_url_queries(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest
        .find("http://")
        .into_iter()
        .chain(rest.find("https://"))
        .min()
    {
        shown.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\'))
            .unwrap_or(tail.len());
        let candidate = &tail[..end];
        match url::Url::parse(candidate) {
            Ok(url) => shown.push_str(&safe_url(&url)),
            // Not a URL after all: still nothing past a '?'.
            Err(_) => match candidate.split_once('?') {
                Some((before, _)) => {
                    shown.push_str(before);
                    shown.push_str("?[query hidden]");
                }
                None => shown.push_str(candidate),
            },
        }
        rest = &tail[end..];
    }
    shown.push_str(rest);
    shown
}

/// [`safe_url`] for a text that may be a URL (anything else is returned as is).
pub(crate) fn safe_url_text(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => safe_url(&url),
        _ => text.to_owned(),
    }
}
