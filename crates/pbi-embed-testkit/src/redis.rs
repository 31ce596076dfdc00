//! A `redis-server` of a test's own, on a free loopback port, stopped on drop. Needs
//! `redis-server` on `PATH` (Debian: `apt-get install redis-server`).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free loopback port, without persistence.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not answer within 10 s.
    #[must_use]
    pub fn start() -> Self {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        let mut server = Self { addr, child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Stops it (a Redis outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server could not start ({e}): install it (apt-get install redis-server)")
            });
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every key and its raw value (to look for tokens in clear).
    #[must_use]
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let keys = self.query(&["KEYS", "*"]);
        keys.into_iter()
            .filter_map(|key| {
                let key = String::from_utf8(key).ok()?;
                let value = self.query(&["GET", &key]).pop()?;
                Some((key, value))
            })
            .collect()
    }

    /// Runs a command (`SET key value`, `DEL key`), as an operator or a misbehaving
    /// neighbour would; its bulk-string answers, if any.
    pub fn command(&self, args: &[&str]) -> Vec<Vec<u8>> {
        self.query(args)
    }

    fn answers(&self) -> bool {
        TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
            .and_then(|mut stream| {
                stream.write_all(b"PING\r\n")?;
                let mut reply = [0; 7];
                stream.read_exact(&mut reply)?;
                Ok(&reply == b"+PONG\r\n")
            })
            .unwrap_or(false)
    }

    /// A command's bulk-string answers (RESP2, enough for KEYS and GET).
    fn query(&self, args: &[&str]) -> Vec<Vec<u8>> {
        let mut stream = TcpStream::connect(self.addr).unwrap_or_else(|e| panic!("{e}"));
        let mut command = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            command.extend(format!("${}\r\n{arg}\r\n", arg.len()).into_bytes());
        }
        stream.write_all(&command).unwrap_or_else(|e| panic!("{e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut reader = std::io::BufReader::new(stream);
        let header = read_line(&mut reader);
        match header.as_bytes().first() {
            Some(b'*') => {
                let count: usize = header[1..].trim().parse().unwrap_or(0);
                (0..count).filter_map(|_| read_bulk(&mut reader)).collect()
            }
            Some(b'$') => bulk_body(&mut reader, &header).into_iter().collect(),
            _ => Vec::new(),
        }
    }
}

fn read_line(reader: &mut std::io::BufReader<TcpStream>) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(reader, &mut line).unwrap_or_else(|e| panic!("{e}"));
    line
}

/// A bulk string: its `$len` line, then its bytes (`None` for `$-1`).
fn read_bulk(reader: &mut std::io::BufReader<TcpStream>) -> Option<Vec<u8>> {
    let header = read_line(reader);
    bulk_body(reader, &header)
}

fn bulk_body(reader: &mut std::io::BufReader<TcpStream>, header: &str) -> Option<Vec<u8>> {
    let length: usize = header.get(1..)?.trim().parse().ok()?;
    let mut value = vec![0; length + 2];
    reader.read_exact(&mut value).ok()?;
    value.truncate(length);
    Some(value)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
