//! Secret hygiene: every log line at TRACE (tracing and `log` records alike) and every
//! error's Display and Debug, across successes and failures of every kind, is free of the
//! client secret, bearer tokens, embed tokens and identity blobs. A test binary of its
//! own: it installs the global subscriber.

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

#[test]
fn no_secret_in_any_log_line_or_error() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let (shown, secrets) = pbi_embed_testkit::conformance::secret_hygiene_suite(&common::Reqwest::new());
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture works: pbi-embed's own records, and reqwest's and hyper's.
    assert!(
        logs.contains("pbi_embed_reqwest"),
        "no pbi-embed record captured:\n{logs}"
    );
    assert!(
        logs.contains("hyper") || logs.contains("reqwest::"),
        "no reqwest record captured:\n{logs}"
    );
    let everything = format!("{logs}\n{}", shown.join("\n"));
    for secret in secrets {
        assert!(!everything.contains(&secret), "{secret:?} leaked:\n{everything}");
    }
}
