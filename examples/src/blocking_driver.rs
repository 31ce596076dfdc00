//! The README's blocking driver, as a file its tests run (`tests/blocking_driver.rs`):
//! eight threads at once against the emulator, sharing one sign-in.

use std::io::Read as _;
use std::time::{Instant, SystemTime};

use pbi_embed_core::driver::{Action, Call, Event, Exchange, Now, SharedSession, TransportError};
use pbi_embed_core::{Error, http};

/// What sends an exchange: the response, whatever its status, or how the transport failed.
pub type Sender<'s> = &'s dyn Fn(&Exchange) -> Result<http::Response<Vec<u8>>, TransportError>;

/// Runs `call` to its end, sending each exchange with `send` (which must follow no
/// redirect, and bound the exchange by `exchange.timeout()` and
/// `exchange.max_response_bytes()`).
pub fn run<T>(session: &SharedSession, call: Call<'_, T>, send: Sender<'_>) -> Result<T, Error> {
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
            // Background work (refresh-ahead, the bearer token renewed before it expires):
            // run `Call::refresh(work)` on a thread, or drop it.
            Action::Spawn(_) => Event::resume(),
            // Only asked for when the builder was given a shared store.
            Action::Store(op) => op.respond(Err("no shared store".into())),
            // Steps that do not depend on each other, each a call of its own: one after
            // the other is correct (pbi-embed-ureq runs them on a few threads at once).
            Action::Join(join) => {
                let (branches, joiner) = join.into_branches();
                joiner.respond(
                    branches
                        .into_iter()
                        .map(|branch| run(session, branch, send))
                        .collect(),
                )
            }
            Action::Done(result) => return result,
        };
    }
}
