//! The layout stays what the crate docs say: folders named for the parts of the design,
//! each using only the folders before it (no import cycle between folders), a small
//! session coordinator, and no source file too long to read at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders, each allowed to use only those before it.
const ORDER: [&str; 6] = ["wire", "settings", "api", "auth", "flow", "client"];

/// The longest a source file may be, its tests aside.
const MAX_LINES: usize = 600;
/// The longest the session coordinator may be.
const MAX_SESSION_LINES: usize = 400;

fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// A file's code without its unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]\nmod tests").next().unwrap().to_owned()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The folder a file is in, if it is in one.
fn folder(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?.to_owned();
    parts.next().map(|_| first)
}

#[test]
fn folders_use_only_the_folders_before_them() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let Some(from) = folder(path) else { continue };
        assert!(
            ORDER.contains(&from.as_str()),
            "{from}/ is not in the documented layout"
        );
        let code = code(path);
        for to in ORDER {
            let used = [format!("crate::{to}::"), format!("crate::{to}::{{")]
                .iter()
                .any(|pattern| code.contains(pattern.as_str()));
            if used && to != from {
                uses.entry(from.clone()).or_default().insert(to.to_owned());
            }
        }
    }
    let rank = |folder: &str| ORDER.iter().position(|f| *f == folder).unwrap();
    let upward: Vec<String> = uses
        .iter()
        .flat_map(|(from, tos)| {
            tos.iter()
                .filter(|to| rank(to) > rank(from))
                .map(move |to| format!("{from}/ uses {to}/"))
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports against the layout's order (a cycle in the making): {upward:?}"
    );
    assert!(uses.contains_key("flow"), "the check found no imports: {uses:?}");
}

#[test]
fn no_source_file_is_too_long_to_read_at_once() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    for path in &files {
        let lines = code(path).lines().count();
        let limit = if path.ends_with("flow/session.rs") {
            MAX_SESSION_LINES
        } else {
            MAX_LINES
        };
        assert!(
            lines <= limit,
            "{} has {lines} lines besides its tests (at most {limit})",
            path.display()
        );
    }
}
