//! The example token service (`examples/server/src/bin/token_service.rs`) as a process of a
//! test's or a benchmark's own, signed in to the emulator, killed on drop.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use pbi_embed_emulator::Emulator;

use crate::redis::RedisServer;

/// base64 of the 32 bytes 7 to 38: the cache key the services share in tests (a key of
/// one repeated byte is refused as a placeholder).
pub const CACHE_KEY: &str = "BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";

/// A running token service.
#[derive(Debug)]
pub struct TokenService {
    child: Child,
    base: String,
}

impl TokenService {
    /// Starts `program` on a free loopback port against `emulator`, sharing tokens
    /// through `redis` when given, with `extra` variables set too.
    ///
    /// # Panics
    /// When it does not start or does not print where it listens.
    #[must_use]
    pub fn start(
        program: &Path,
        emulator: &Emulator,
        redis: Option<&RedisServer>,
        extra: &[(&str, &str)],
    ) -> Self {
        let ids = emulator.ids();
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PBI_LISTEN", "127.0.0.1:0")
            .env("PBI_WORKSPACE_ID", &ids.workspace)
            .env("PBI_API_BASE", emulator.base_url())
            .env("PBI_AUTHORITY_HOST", emulator.base_url())
            .env("AZURE_TENANT_ID", &ids.tenant)
            .env("AZURE_CLIENT_ID", &ids.client_id)
            .env("AZURE_CLIENT_SECRET", &ids.client_secret)
            .envs(extra.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(redis) = redis {
            command
                .env("PBI_REDIS_URL", redis.url())
                .env("PBI_CACHE_KEY", CACHE_KEY)
                // On a loaded 2-core test machine a Redis command can take longer than the
                // 50 ms default, and a service that gives up on the store mints a pair
                // twice: the tests count mints, so they give the store a second.
                .env("PBI_REDIS_TIMEOUT_MS", "1000");
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{e}"));
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the token service said {line:?}"))
            .to_owned();
        Self { child, base }
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Kills it (a replica that dies) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        self.kill();
    }
}
