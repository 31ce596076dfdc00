//! Hostile servers on loopback: raw sockets that answer what a broken proxy or a
//! malicious server might, byte for byte. Each case says what the client must end in,
//! and how fast.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pbi_embed_core::ErrorKind;

/// What a hostile server does with each connection, after reading the request.
pub type Behaviour = fn(&mut TcpStream, &Context);

/// What a behaviour may need.
#[derive(Debug)]
pub struct Context {
    /// The address of the decoy, for redirects "to another host".
    pub decoy: SocketAddr,
}

/// A server on 127.0.0.1 that answers every request with one behaviour, and counts them.
#[derive(Debug)]
pub struct HostileServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Starts serving `behaviour` on a free port of `ip` (any 127.x.y.z address).
    ///
    /// # Panics
    /// When the socket cannot be bound.
    #[must_use]
    pub fn start(ip: &str, behaviour: Behaviour, decoy: SocketAddr) -> Self {
        let context = Arc::new(Context { decoy });
        Self::accepting(ip, move |mut stream, count| {
            let context = Arc::clone(&context);
            std::thread::spawn(move || {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                while read_request(&mut stream) {
                    count.fetch_add(1, Ordering::SeqCst);
                    behaviour(&mut stream, &context);
                }
            });
        })
    }

    /// A server on 127.0.0.1 that accepts connections and never reads from them nor
    /// answers: a client's request, once the socket's buffers are full, cannot be sent.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    #[must_use]
    pub fn never_reading() -> Self {
        let mut held = Vec::new();
        Self::accepting("127.0.0.1", move |stream, count| {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        })
    }

    /// Binds a free port of `ip` and hands each accepted connection, with the request
    /// counter, to `on_connection` until dropped.
    fn accepting(
        ip: &str,
        mut on_connection: impl FnMut(TcpStream, Arc<AtomicUsize>) + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => on_connection(stream, Arc::clone(&count)),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.x.y.z:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far (connections, for a server that never reads).
    #[must_use]
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A listener on 127.0.0.1 that never accepts, with its accept queue full: a connection
/// attempt gets no answer at all (the kernel drops the SYN), as with a host that is down
/// behind a firewall, so only a connect time-out ends it.
#[derive(Debug)]
pub struct FullBacklog {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    /// Binds, listens with the smallest backlog and fills it.
    ///
    /// # Panics
    /// When the socket cannot be bound, or the queue never fills.
    #[must_use]
    pub fn start() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap_or_else(|e| panic!("{e}"));
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        listener.bind(&any.into()).unwrap_or_else(|e| panic!("bind: {e}"));
        listener.listen(0).unwrap_or_else(|e| panic!("listen: {e}"));
        let addr = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or_else(|| panic!("no local address"));
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                Err(_) => {
                    return Self {
                        addr,
                        _listener: listener,
                        _queued: queued,
                    };
                }
            }
        }
        panic!("the accept queue of {addr} never filled");
    }

    /// `http://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (head and `Content-Length` body); false at end of stream.
fn read_request(stream: &mut TcpStream) -> bool {
    let Ok(clone) = stream.try_clone() else {
        return false;
    };
    let mut reader = BufReader::new(clone);
    let mut length = 0usize;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if first {
            first = false;
            continue;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).is_ok()
}

fn write(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let _ = stream.flush();
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[&str], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    write(stream, head.as_bytes());
    write(stream, body);
}

/// Streams `total` bytes of filler in chunked encoding, until done or the peer hangs up.
fn stream_filler(stream: &mut TcpStream, advertise: Option<u64>, total: u64) {
    let head = match advertise {
        Some(length) => {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
        }
        None => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_owned(),
    };
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0u64;
    while sent < total {
        let result = if advertise.is_some() {
            stream.write_all(&chunk)
        } else {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| stream.write_all(&chunk))
                .and_then(|()| stream.write_all(b"\r\n"))
        };
        if result.is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}

/// Half a megabyte short of 512 MiB: far past any cap.
pub const HUGE: u64 = 512 * 1024 * 1024;

/// One hostile answer and what the client must end in.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What it is.
    pub name: &'static str,
    /// What the server does.
    pub behaviour: Behaviour,
    /// The error kind the client must return.
    pub kind: ErrorKind,
    /// The longest the call may take, retries included.
    pub within: Duration,
}

/// The cases. Clients are expected to use [`crate::quick_retries`], a 2 s time-out and
/// the default 1 MiB body cap.
#[must_use]
pub fn cases() -> Vec<Case> {
    let case = |name, behaviour, kind, seconds| Case {
        name,
        behaviour,
        kind,
        within: Duration::from_secs(seconds),
    };
    vec![
        case(
            "garbage JSON",
            |s, _| {
                respond(
                    s,
                    "200 OK",
                    &["Content-Type: application/json"],
                    b"{\"token\": tru,,}",
                )
            },
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "truncated JSON",
            |s, _| {
                write(s, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"token\":\"abc");
                let _ = s.shutdown(std::net::Shutdown::Both);
            },
            ErrorKind::Network,
            5,
        ),
        case(
            "an HTML page with 200",
            |s, _| {
                respond(
                    s,
                    "200 OK",
                    &["Content-Type: text/html"],
                    b"<html><body>Sign in</body></html>",
                )
            },
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "an HTML page with 503",
            |s, _| {
                respond(
                    s,
                    "503 Service Unavailable",
                    &["Content-Type: text/html"],
                    b"<html>down</html>",
                )
            },
            ErrorKind::ServerError,
            5,
        ),
        case(
            "an empty 200",
            |s, _| respond(s, "200 OK", &[], b""),
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "a huge advertised body",
            |s, _| stream_filler(s, Some(HUGE), HUGE),
            ErrorKind::BodyTooLarge,
            10,
        ),
        case(
            "a huge chunked body",
            |s, _| stream_filler(s, None, HUGE),
            ErrorKind::BodyTooLarge,
            10,
        ),
        case(
            "a body dripped a byte a second",
            |s, _| {
                write(
                    s,
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
                );
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_secs(1));
                    if s.write_all(b" ").is_err() {
                        return;
                    }
                }
            },
            // Three attempts (time-outs are retried) of 2 s each.
            ErrorKind::Timeout,
            8,
        ),
        case(
            "a connection reset mid-body",
            |s, _| {
                write(s, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"tok");
                let _ = socket2::SockRef::from(&*s).set_linger(Some(Duration::ZERO));
                let _ = s.shutdown(std::net::Shutdown::Read);
            },
            ErrorKind::Network,
            5,
        ),
        case(
            "a 302 to another host",
            |s, c| {
                let location = format!("Location: http://{}/v1.0/myorg/GenerateToken", c.decoy);
                respond(s, "302 Found", &[&location], b"");
            },
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "a 307 to another host",
            |s, c| {
                let location = format!("Location: http://{}/v1.0/myorg/GenerateToken", c.decoy);
                respond(s, "307 Temporary Redirect", &[&location], b"");
            },
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "invalid UTF-8 in a JSON 200",
            |s, _| {
                respond(
                    s,
                    "200 OK",
                    &["Content-Type: application/json"],
                    b"{\"token\":\"\xff\xfe\",\"tokenId\":\"x\"}",
                )
            },
            ErrorKind::UnreadableResponse,
            2,
        ),
        case(
            "invalid UTF-8 in a 400",
            |s, _| {
                respond(
                    s,
                    "400 Bad Request",
                    &["Content-Type: text/plain"],
                    b"bad \xff\xfe request",
                )
            },
            ErrorKind::BadRequest,
            2,
        ),
        case(
            "Retry-After: soon",
            |s, _| respond(s, "429 Too Many Requests", &["Retry-After: soon"], b""),
            ErrorKind::Throttled,
            5,
        ),
        case(
            "Retry-After: -5",
            |s, _| respond(s, "429 Too Many Requests", &["Retry-After: -5"], b""),
            ErrorKind::Throttled,
            5,
        ),
        case(
            "Retry-After: 1000000000000",
            |s, _| respond(s, "429 Too Many Requests", &["Retry-After: 1000000000000"], b""),
            ErrorKind::Throttled,
            2,
        ),
        case(
            "two Retry-After values",
            |s, _| {
                respond(
                    s,
                    "429 Too Many Requests",
                    &["Retry-After: 1", "Retry-After: 3600"],
                    b"",
                )
            },
            ErrorKind::Throttled,
            5,
        ),
        case(
            "a 429 storm asking for an hour",
            |s, _| {
                respond(
                    s,
                    "429 Too Many Requests",
                    &["Retry-After: 3600", "Content-Type: application/json"],
                    b"{\"error\":{\"code\":\"TooManyRequests\"}}",
                )
            },
            ErrorKind::Throttled,
            2,
        ),
        case(
            "a header line without a colon",
            |s, _| {
                write(
                    s,
                    b"HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 2\r\n\r\n{}",
                )
            },
            ErrorKind::Network,
            5,
        ),
    ]
}
