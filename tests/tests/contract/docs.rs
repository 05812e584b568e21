//! The repository's own citations: comments and documents cite `docs/*.md`
//! pages by section, and nothing cites a file a user's clone does not have.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every text file of the repository that may hold a citation.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "target" | ".git" | "node_modules" | "corpus" | "artifacts"
            ) {
                sources(&path, out);
            }
        } else if [".rs", ".toml", ".md", ".sh", ".json", ".yml"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || name == "run"
        {
            out.push(path);
        }
    }
}

/// `§N` numbers right after a citation: `docs/x.md §2`, `` `docs/x.md` §2, §3 ``.
fn sections(after: &str) -> Vec<String> {
    let mut rest = after.trim_start_matches('`').trim_start();
    let mut found = Vec::new();
    while let Some(tail) = rest.strip_prefix('§') {
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        rest = tail[digits.len()..].trim_start_matches(',').trim_start();
        found.push(digits);
    }
    found
}

#[test]
fn every_cited_docs_page_and_section_exists_and_nothing_cites_outside_the_repository() {
    let root = repo_root();
    let mut files = Vec::new();
    sources(&root, &mut files);
    let outside = [
        "API notes",
        "../API.md",
        "research/",
        "../shared",
        "STYLE.md",
    ];
    let mut problems = Vec::new();
    let mut citations = 0;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        if shown.ends_with("docs.rs") && shown.contains("contract") {
            continue; // this file names the patterns it looks for
        }
        for (number, line) in text.lines().enumerate() {
            for pattern in outside {
                if line.contains(pattern) {
                    problems.push(format!(
                        "{shown}:{}: cites `{pattern}`, outside the repository",
                        number + 1
                    ));
                }
            }
            let mut rest = line;
            while let Some(start) = rest.find("docs/") {
                let tail = &rest[start..];
                let Some(end) = tail.find(".md") else { break };
                let page = &tail[..end + 3];
                rest = &tail[end + 3..];
                let name = &page["docs/".len()..page.len() - 3];
                let before = line[..line.len() - tail.len()].chars().next_back();
                // Only this repository's pages: not `github.com/x/docs/a/b.md`.
                if before.is_some_and(|c| c == '/' || c.is_alphanumeric())
                    || name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    continue;
                }
                citations += 1;
                let Ok(doc) = std::fs::read_to_string(root.join(page)) else {
                    problems.push(format!(
                        "{shown}:{}: cites {page}, which does not exist",
                        number + 1
                    ));
                    continue;
                };
                for section in sections(rest) {
                    let heading = format!("## {section}. ");
                    if !doc.lines().any(|l| l.starts_with(&heading)) {
                        problems.push(format!(
                            "{shown}:{}: cites {page} §{section}, which has no heading `{heading}`",
                            number + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        citations >= 10,
        "only {citations} citations of docs/ pages found: is the walk right?"
    );
}

#[test]
fn section_numbers_are_read_after_a_citation() {
    assert_eq!(sections("` §2, §3): x"), ["2", "3"]);
    assert_eq!(sections(" §12."), ["12"]);
    assert!(sections("): nothing").is_empty());
}

/// Paths of the repository's files written in a text: `kling-api-ext/src/x.rs`,
/// `bench/README.md`.
fn cited_paths(text: &str) -> Vec<String> {
    const ROOTS: &[&str] = &[
        "kling-api-ext/",
        "kling-api/",
        "kling-fleet/",
        "kling-sim/",
        "kling-cli/",
        "kling-testkit/",
        "bench/",
        "fuzz/",
        "tests/",
        "spec/",
        "docs/",
        "examples/",
    ];
    const EXTENSIONS: &[&str] = &[".rs", ".md", ".json", ".sh", ".toml", ".txt"];
    let mut found = Vec::new();
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    for (at, _) in text.char_indices() {
        let rest = &text[at..];
        // A path starts a word: not in the middle of another path or URL.
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !path_char(c) && c != ':');
        if !starts_word || !ROOTS.iter().any(|r| rest.starts_with(r)) {
            continue;
        }
        let path: String = rest.chars().take_while(|&c| path_char(c)).collect();
        let path = path.trim_end_matches('.');
        if EXTENSIONS.iter().any(|e| path.ends_with(e)) {
            found.push(path.to_owned());
        }
    }
    found
}

/// The documents describe the tree as it is: every source file or page they
/// name exists (the CHANGELOG, which tells history, aside).
#[test]
fn every_file_the_documents_name_exists() {
    let root = repo_root();
    let mut pages = vec![
        root.join("README.md"),
        root.join("bench/README.md"),
        root.join("spec/README.md"),
        root.join("kling-api-ext/README.md"),
        root.join("kling-fleet/README.md"),
    ];
    // docs/ and its folders (docs/design/, ...).
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut named = 0;
    let mut missing = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for path in cited_paths(&text) {
            named += 1;
            if !root.join(&path).exists() {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
        // Markdown links are read from the page's own folder, as a reader's
        // browser reads them.
        for link in relative_links(&text) {
            named += 1;
            if !page.parent().unwrap().join(&link).exists() {
                missing.push(format!("{}: link {link}", page.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not there:\n{}",
        missing.join("\n")
    );
    assert!(named >= 10, "only {named} paths found: is the scan right?");
}

/// The targets of `[text](target)` links that are files of the repository:
/// not a URL, not an anchor on the same page; the anchor cut off.
fn relative_links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split('#').next().unwrap_or_default();
            let external = target.contains("://") || target.starts_with("mailto:");
            (!target.is_empty() && !external && !target.contains(' ')).then(|| target.to_owned())
        })
        .collect()
}

#[test]
fn links_are_read_from_the_page() {
    assert_eq!(
        relative_links("[a](design/x.md#top) [b](https://x.org/y.md) [c](#here) [d](../README.md)"),
        ["design/x.md", "../README.md"]
    );
}

#[test]
fn paths_are_read_as_words() {
    assert_eq!(
        cited_paths("see `kling-api-ext/src/task.rs` and bench/README.md."),
        ["kling-api-ext/src/task.rs", "bench/README.md"]
    );
    assert!(cited_paths("https://github.com/x/kling-cli/src/a.rs").is_empty());
    assert!(cited_paths("kling-cli/src/ and spec/").is_empty());
}
