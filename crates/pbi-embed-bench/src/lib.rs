//! Benchmarks of pbi-embed. `scripts/bench` runs them all and writes `BENCHMARKS.md`.

pub mod bare;
pub mod micro;

/// Writes `section` into `BENCHMARKS.md` between `begin` and `end` (the markers, which
/// `section` starts and ends with), or appends it when the file has no such section yet.
///
/// # Panics
/// When the file cannot be written.
pub fn write_section(begin: &str, end: &str, section: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = match (current.find(begin), current.find(end)) {
        (Some(at), Some(until)) if at < until => format!(
            "{}{}{}",
            &current[..at],
            section.trim_end(),
            &current[until + end.len()..]
        ),
        _ => format!("{}\n\n{}\n", current.trim_end(), section.trim_end()),
    };
    std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
