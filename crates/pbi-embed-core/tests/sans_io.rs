//! The core does no IO and reads no clock or environment: a guard over its source, and
//! over its dependency list.

use std::path::Path;

/// Calls that would read the clock, the environment, files, the network or spawn work.
const FORBIDDEN: [&str; 10] = [
    "SystemTime::now",
    "Instant::now",
    "std::env",
    "env::var",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "tokio",
    "File::open",
];

#[test]
fn source_reads_no_clock_env_file_or_network() {
    let mut files = Vec::new();
    source_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests and doc examples (a driver's code) may read a clock; the core may not.
        let before_tests = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let code: String = before_tests
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for forbidden in FORBIDDEN {
            assert!(!code.contains(forbidden), "{} uses {forbidden}", path.display());
        }
    }
    assert!(files.len() >= 30, "only {} source files found", files.len());
}

/// Every `.rs` file under `dir`, in every folder.
fn source_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_http_client_runtime_or_socket_dependency() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    // Both `[dependencies]` with `name = ...` lines (the repository's manifest) and one
    // `[dependencies.name]` table a dependency (the packaged, normalized one).
    let mut deps = Vec::new();
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']');
            in_dependencies = header == "dependencies";
            if let Some(name) = header.strip_prefix("dependencies.") {
                deps.push(name.trim_matches('"').to_owned());
            }
        } else if in_dependencies && let Some((name, _)) = line.split_once('=') {
            // `http.workspace = true` names `http`.
            let name = name.trim();
            deps.push(name.strip_suffix(".workspace").unwrap_or(name).to_owned());
        }
    }
    assert!(
        deps.iter().any(|d| d == "http"),
        "no dependencies found in {deps:?}"
    );
    for crate_name in ["ureq", "reqwest", "hyper", "tokio", "async-std", "mio", "socket2"] {
        assert!(
            !deps.iter().any(|d| d == crate_name),
            "pbi-embed-core depends on {crate_name}"
        );
    }
}
