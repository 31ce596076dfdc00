//! Secret hygiene: every log line at TRACE (tracing and `log` records alike, ureq's own
//! raw-byte records included) and every error's Display and Debug, across successes and
//! failures of every kind, is free of the client secret, bearer tokens, embed tokens and
//! identity blobs. A test binary of its own: it installs the global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

mod common;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What went over the wire according to ureq-proto's raw-byte records: each is one row
/// of 16 bytes, hex then ASCII; the ASCII columns joined give the bytes back (with `.`
/// for anything unprintable), so a token split across rows is found whole.
fn wire_text(logs: &str) -> String {
    logs.lines()
        .filter(|line| line.contains("TRACE") && line.contains("ureq_proto"))
        .filter_map(|line| line.rsplit(' ').next())
        .collect()
}

/// Runs the suite under a TRACE subscriber; what it logged and showed, and its secrets.
fn run_suite() -> (String, String, Vec<String>) {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (shown, secrets) = pbi_embed_testkit::conformance::secret_hygiene_suite(&common::Ureq);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture works: pbi-embed's own records, and ureq's through the `log` bridge.
    assert!(
        logs.contains("pbi_embed_ureq"),
        "no pbi-embed record captured:\n{logs}"
    );
    assert!(
        logs.contains("ureq::") || logs.contains("ureq_proto"),
        "no ureq record captured:\n{logs}"
    );
    (logs, shown.join("\n"), secrets)
}

/// With the default `cap-log-level`, no secret is in any log line (ureq's raw bytes
/// reassembled included) or any error.
#[cfg(feature = "cap-log-level")]
#[test]
fn no_secret_in_any_log_line_or_error() {
    let (logs, shown, secrets) = run_suite();
    let wire = wire_text(&logs);
    assert!(wire.is_empty(), "ureq's raw bytes were logged:\n{wire}");
    let everything = format!("{logs}\n{shown}");
    for secret in secrets {
        assert!(!everything.contains(&secret), "{secret:?} leaked:\n{everything}");
    }
}

/// Without `cap-log-level` (`--no-default-features --features rustls`), ureq's TRACE
/// records carry the bearer token: the reason the cap is on by default. `.ci/run` runs
/// this variant.
#[cfg(not(feature = "cap-log-level"))]
#[test]
fn without_the_cap_ureqs_trace_records_carry_tokens() {
    let (logs, _, secrets) = run_suite();
    let wire = wire_text(&logs);
    assert!(
        secrets.iter().any(|secret| wire.contains(secret.as_str())),
        "no secret in ureq's raw bytes: the cap may no longer be needed\n{wire}"
    );
}
