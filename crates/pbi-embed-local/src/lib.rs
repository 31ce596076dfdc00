//! What pbi-embed's drivers do on this machine besides HTTP, written once for both: read
//! a credential file ([`read_file`]), run a program ([`run_program`]), run steps side by
//! side on threads ([`side_by_side`]). Everything here blocks a thread of its own (or the
//! caller's), never an async executor's: an async driver waits on the answer.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pbi_embed_core::driver::{ProgramOutput, ProgramRun};

/// Reads at most `max_bytes` of the file at `path` on a thread of its own and hands the
/// result to `answer`. The thread may never end (a FIFO nobody writes to, a hung mount):
/// the driver waits for the answer no longer than the read's time-out.
pub fn read_file(path: PathBuf, max_bytes: u64, answer: impl FnOnce(io::Result<Vec<u8>>) + Send + 'static) {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|opened| opened.take(max_bytes).read_to_end(&mut bytes))
            .map(|_| bytes);
        answer(read);
    });
}

/// What a driver answers when [`read_file`] gave no answer within the read's `timeout`.
#[must_use]
pub fn read_timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer within {} ms", timeout.as_millis()),
    )
}

/// Runs `run`'s program, blocking the calling thread: directly (no shell), stdin closed,
/// in a process group of its own; each output read up to its cap on a thread. When the
/// program exits, its outputs are read for the run's `output_grace` more, then what is
/// left of the group is killed (a child holding the pipes does not hold the run). At the
/// time-out, the whole group is killed and the run fails with `TimedOut`.
///
/// # Errors
/// When the program cannot be started or waited for, or runs past its time-out.
pub fn run_program(run: &ProgramRun) -> io::Result<ProgramOutput> {
    let mut command = Command::new(run.program());
    command
        .args(run.args())
        .envs(run.env().iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    let (closed, outputs_closed) = std::sync::mpsc::channel();
    let printed: [Arc<Mutex<Vec<u8>>>; 2] = Default::default();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|pipe| Box::new(pipe) as _),
        child.stderr.take().map(|pipe| Box::new(pipe) as _),
    ];
    for (pipe, into) in pipes.into_iter().zip(&printed) {
        let (closed, into, limit) = (closed.clone(), Arc::clone(into), run.max_output_bytes());
        std::thread::spawn(move || {
            if let Some(pipe) = pipe {
                let mut pipe = pipe.take(limit);
                let mut chunk = [0; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    into.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]);
                }
            }
            let _ = closed.send(());
        });
    }
    let deadline = Instant::now().checked_add(run.timeout());
    let left =
        |until: Option<Instant>| until.map_or(Duration::MAX, |t| t.saturating_duration_since(Instant::now()));
    // Done when the program exits, not when its outputs close.
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if left(deadline).is_zero() {
            kill_group(&child);
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::ErrorKind::TimedOut.into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let grace = Instant::now().checked_add(run.output_grace().min(left(deadline)));
    let all_closed = (0..2).all(|_| outputs_closed.recv_timeout(left(grace)).is_ok());
    if !all_closed {
        kill_group(&child);
    }
    let [stdout, stderr] =
        printed.map(|into| std::mem::take(&mut *into.lock().unwrap_or_else(PoisonError::into_inner)));
    Ok(ProgramOutput::new(status.code(), stdout, stderr))
}

/// Ends what is left of `child`'s process group.
fn kill_group(child: &std::process::Child) {
    #[cfg(unix)]
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::KILL,
    );
    #[cfg(not(unix))]
    let _ = child;
}

/// `run` over each of `items` on up to `at_most` threads (the calling one included), the
/// results in the items' order.
pub fn side_by_side<I: Send, R: Send>(items: Vec<I>, at_most: usize, run: impl Fn(I) -> R + Sync) -> Vec<R> {
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..count).map(|_| None).collect());
    let work = || {
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((index, item)) = next else { break };
            let result = run(item);
            results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..count.min(at_most) {
            scope.spawn(work);
        }
        work();
    });
    let results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.into_iter().map_while(|result| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_by_side_keeps_the_order_and_uses_at_most_the_threads_given() {
        let at_once = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let results = side_by_side((0..12).collect(), 3, |n: u32| {
            let now = at_once.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            at_once.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            n * 2
        });
        assert_eq!(results, (0..12).map(|n| n * 2).collect::<Vec<_>>());
        let most = most.into_inner();
        assert!((2..=3).contains(&most), "{most}");
    }

    #[test]
    fn a_file_is_read_up_to_its_cap() {
        let path = std::env::temp_dir().join(format!("pbi-embed-local-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let (sender, read) = std::sync::mpsc::channel();
        read_file(path.clone(), 4, move |result| {
            let _ = sender.send(result);
        });
        assert_eq!(read.recv().unwrap().unwrap(), b"0123");
        let _ = std::fs::remove_file(path);
    }
}
