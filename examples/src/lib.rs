//! The quick start (`examples/quickstart.rs`), and the README's blocking driver for any
//! HTTP client that can send an `http::Request` ([`blocking_driver`]), which its tests
//! run on eight threads at once.

pub mod blocking_driver;
