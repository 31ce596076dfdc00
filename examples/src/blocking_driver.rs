//! The README's blocking driver, as a file its tests run (`tests/blocking_driver.rs`):
//! eight threads at once against the emulator, sharing one sign-in.

use std::io::Read as _;
use std::time::{Instant, SystemTime};

use pbi_embed_core::driver::{Action, Call, Event, Exchange, Now, SharedSession, TransportError};
use pbi_embed_core::{Error, http};

/// Runs `call` to its end, sending each exchange with `send` (which must follow no
/// redirect, and bound the exchange by `exchange.timeout()` and
/// `exchange.max_response_bytes()`).
pub fn run<T>(
    session: &SharedSession,
    call: Call<'_, T>,
    send: impl Fn(&Exchange) -> Result<http::Response<Vec<u8>>, TransportError>,
) -> Result<T, Error> {
    let mut pump = session.pump(call, || {});
    let mut event = Event::resume();
    loop {
        let now = Now::new(Instant::now(), SystemTime::now());
        event = match pump.step(event, now, fastrand::u32(..)) {
            Action::Send(exchange) => {
                let response = send(&exchange);
                exchange.respond(response)
            }
            // A retry's backoff, or another call's sign-in (a park is short: sleeping it
            // and looking again is enough).
            Action::Wait(delay) | Action::Park(delay) => {
                std::thread::sleep(delay);
                Event::resume()
            }
            Action::FetchToken(fetch) => fetch.respond(Err("this driver has no token source".into())),
            // A federated token or certificate file, read at every sign-in, at most its cap.
            // (One that may block, a FIFO or a network mount, needs a thread and
            // `file.timeout()`, as pbi-embed-ureq does.)
            Action::ReadFile(file) => {
                let mut bytes = Vec::new();
                let read = std::fs::File::open(file.path())
                    .and_then(|opened| opened.take(file.max_bytes()).read_to_end(&mut bytes));
                file.respond(read.map(|_| bytes).map_err(Into::into))
            }
            // The Azure CLI credential; this stack runs no programs.
            Action::RunProgram(run) => run.respond(Err(std::io::ErrorKind::Unsupported.into())),
            // Refresh-ahead's background work: run `Call::refresh(work)` on a thread, or drop it.
            Action::Spawn(_) => Event::resume(),
            // Only asked for when the builder was given a shared store.
            Action::Store(op) => op.respond(Err("no shared store".into())),
            Action::Done(result) => return result,
        };
    }
}
