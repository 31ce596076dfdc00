//! Runs the emulator in the foreground and prints what a client needs: the base URL, the
//! fixture's identifiers, and a bearer token for load tests. Stop it with Ctrl-C.
//!
//! ```sh
//! cargo run --release -p pbi-embed-emulator --example serve -- 127.0.0.1:8080
//! ```

use std::time::Duration;

use pbi_embed_emulator::Emulator;

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("an address such as 127.0.0.1:8080"))
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let emulator = Emulator::builder().listen(listen).start()?;
    let ids = emulator.ids();
    let token = emulator
        .issue_access_token(&ids.client_id, Duration::from_secs(24 * 3600))
        .expect("the fixture's principal");
    let (base_url, workspace, report) = (emulator.base_url(), ids.workspace, ids.report);
    emulator.run_until_signal(|| {
        println!("base_url={base_url}");
        println!("workspace={workspace}");
        println!("report={report}");
        println!("access_token={token}");
    })
}
