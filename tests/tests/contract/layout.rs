//! The shape of the hand-written crates: no two modules of one crate lean on
//! each other (directly or round a circle), and no source file grows past a
//! size a reader can hold, so that each subject has one room.
//!
//! A module's dependencies are the `crate::` paths in its code (comments and
//! unit tests aside), with names the crate root re-exports resolved to the
//! module they come from. A module using its own parent or child is one
//! subject in several files (`wait/{mod,policy,estimate}.rs`): not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: &[&str] = &[
    "kling-api-ext/src",
    "kling-fleet/src",
    "kling-sim/src",
    "kling-cli/src",
];

/// Longest source file, in lines (unit tests included).
const MAX_LINES: usize = 500;

/// Files allowed past [`MAX_LINES`], each with why it is one subject.
const LONG_FILES: &[(&str, &str)] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b/mod.rs` and `a/b.rs` are module `a::b`; the root is "".
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The code without comments and without the unit-test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(cut) => &text[..cut],
        None => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The paths after each `crate::`, and the items of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item: String = item
                    .trim()
                    .chars()
                    .take_while(|&c| is_path_char(c))
                    .collect();
                if !item.is_empty() {
                    paths.push(item);
                }
            }
            continue;
        }
        let path: String = rest.chars().take_while(|&c| is_path_char(c)).collect();
        paths.push(path.trim_end_matches(':').to_owned());
    }
    paths
}

/// What the crate root re-exports, by name: `pub use client::Client;`,
/// `pub use config::{ClientBuilder, ...};`.
fn root_reexports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in root.split(';') {
        let Some(used) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = used.split("::").next().unwrap_or_default().to_owned();
        let items = match (used.find('{'), used.rfind('}')) {
            (Some(open), Some(close)) => used[open + 1..close].to_owned(),
            _ => used.rsplit("::").next().unwrap_or_default().to_owned(),
        };
        for item in items.split(',') {
            let name = item.split(" as ").last().unwrap_or_default().trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.clone());
            }
        }
    }
    names
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::")) || b.is_empty()
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_name(src, f), f.clone()))
        .collect();
    let root = ["lib.rs", "main.rs"]
        .iter()
        .map(|name| src.join(name))
        .find(|p| p.exists())
        .unwrap();
    let reexports = root_reexports(&std::fs::read_to_string(root).unwrap());
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let mut uses = BTreeSet::new();
        for path in crate_paths(&code) {
            let parts: Vec<&str> = path.split("::").collect();
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate))
                .or_else(|| reexports.get(parts[0]).cloned());
            if let Some(target) = target
                && !related(module, &target)
            {
                uses.insert(target);
            }
        }
        edges.insert(module.clone(), uses);
    }
    edges
}

/// A circle of modules, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, done, path) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn no_two_modules_of_a_crate_lean_on_each_other() {
    for krate in CRATES {
        let edges = graph(&repo_root().join(krate));
        assert!(edges.len() > 5, "{krate}: modules not found");
        if let Some(found) = circle(&edges) {
            panic!("{krate}: import circle {}", found.join(" -> "));
        }
    }
}

/// The same graph with every module folded into its top-level module
/// (`wait::policy` into `wait`): the subjects a reader meets first.
fn top_level(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut folded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, uses) in edges {
        let from = top(module);
        let entry = folded.entry(from.clone()).or_default();
        for target in uses {
            let to = top(target);
            if to != from && !to.is_empty() {
                entry.insert(to);
            }
        }
    }
    folded
}

#[test]
fn no_two_top_level_modules_of_a_crate_lean_on_each_other() {
    for krate in CRATES {
        let edges = top_level(&graph(&repo_root().join(krate)));
        if let Some(found) = circle(&edges) {
            panic!(
                "{krate}: import circle between top-level modules {}",
                found.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_sees_a_circle_and_root_reexports() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("client", vec!["submit"]),
        ("submit", vec!["upload"]),
        ("upload", vec!["client"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        circle(&edges).unwrap(),
        ["client", "submit", "upload", "client"]
    );
    let code = code_of(
        "use crate::{Client, wait::estimate::X};\n// crate::nothing\nfn f() { crate::upload::go() }",
    );
    assert_eq!(
        crate_paths(&code),
        ["Client", "wait::estimate::X", "upload::go"]
    );
    let names = root_reexports(
        "mod a;\npub use client::Client;\npub use config::{\n    ClientBuilder, ENV_API_KEY,\n};",
    );
    assert_eq!(names["Client"], "client");
    assert_eq!(names["ENV_API_KEY"], "config");
}

#[test]
fn no_source_file_is_longer_than_a_reader_can_hold() {
    let mut long = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&repo_root().join(krate), &mut files);
        for file in files {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            let name = file
                .strip_prefix(repo_root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if lines > MAX_LINES && !LONG_FILES.iter().any(|(f, _)| *f == name) {
                long.push(format!("{name}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "past {MAX_LINES} lines (split along a seam, or say in LONG_FILES why it is one subject):\n{}",
        long.join("\n")
    );
}
