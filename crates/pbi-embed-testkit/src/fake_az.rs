//! A stand-in for the Azure CLI: a shell script named `az` that logs its arguments and
//! answers as `az account get-access-token --output json` does. Unix only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fake `az` in a directory of its own (put it first on `PATH`, or name it as the
/// program); removed on drop.
#[derive(Debug)]
pub struct FakeAz {
    dir: PathBuf,
}

impl FakeAz {
    /// Signed in: prints `token`, expiring at `expires_on` (POSIX seconds).
    #[must_use]
    pub fn signed_in(token: &str, expires_on: u64) -> Self {
        Self::with_body(&format!(
            "printf '%s' '{{\"accessToken\":\"{token}\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":{expires_on},\"tokenType\":\"Bearer\"}}'"
        ))
    }

    /// Signed in, and leaves a background child holding its standard output and error
    /// when it exits 0 (a telemetry upload, say); the child's id is in
    /// [`child_pid`](Self::child_pid).
    #[must_use]
    pub fn signed_in_leaving_a_child(token: &str, expires_on: u64) -> Self {
        let signed_in = Self::signed_in(token, expires_on);
        let body = std::fs::read_to_string(signed_in.program()).unwrap_or_else(|e| panic!("{e}"));
        let answer = body.lines().last().unwrap_or_default().to_owned();
        Self::with_body(&format!(
            "{answer}\nsleep 60 &\necho $! > \"${{0%/*}}/child\"\nexit 0"
        ))
    }

    /// Never answers, as the real `az` (a shell script running Python) would hang: the
    /// script waits on a child process; both ids are recorded ([`pid`](Self::pid),
    /// [`child_pid`](Self::child_pid)).
    #[must_use]
    pub fn hanging_with_a_child() -> Self {
        Self::with_body("echo $$ > \"${0%/*}/pid\"\nsleep 60 &\necho $! > \"${0%/*}/child\"\nwait")
    }

    /// Signed out: the CLI's own message, exit status 1.
    #[must_use]
    pub fn signed_out() -> Self {
        Self::with_body("echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1")
    }

    /// Never answers: records its process id, then sleeps for a minute.
    #[must_use]
    pub fn hanging() -> Self {
        Self::with_body("echo $$ > \"${0%/*}/pid\"\nexec sleep 60")
    }

    fn with_body(body: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pbi-embed-az-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let script = format!(
            "#!/bin/sh\n# A fake Azure CLI for tests.\n{{ printf '%s\\n' \"$@\"; echo \"NO_COLOR=$AZURE_CORE_NO_COLOR\"; }} > \"${{0%/*}}/args\"\n{body}\n"
        );
        let path = dir.join("az");
        std::fs::write(&path, script).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Self { dir }
    }

    /// The script.
    #[must_use]
    pub fn program(&self) -> PathBuf {
        self.dir.join("az")
    }

    /// Its directory (for `PATH`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The arguments of its last run, then `NO_COLOR=` and the value of
    /// `AZURE_CORE_NO_COLOR` it saw; empty if it never ran.
    #[must_use]
    pub fn last_args(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("args"))
            .map(|text| text.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The process id a [`hanging`](Self::hanging) one recorded.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.recorded("pid")
    }

    /// The process id of the child it started, when it starts one.
    #[must_use]
    pub fn child_pid(&self) -> Option<u32> {
        self.recorded("child")
    }

    fn recorded(&self, file: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for FakeAz {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
