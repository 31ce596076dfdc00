//! A deliberately small HTTP/1.1 client for testing the emulator byte for byte: it sends
//! exactly the headers it is given (no implicit Content-Type), keeps connections alive,
//! and reads Content-Length and chunked bodies.

#![allow(dead_code, unreachable_pub)] // Each test file uses a different part.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use pbi_embed_emulator::Emulator;
use serde_json::Value;

/// A response as read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    /// `error.code` of a Power BI error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    /// `error.message` of a Power BI error body.
    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
    /// Asserts a Power BI error: status, code, a message containing `message`, and a RequestId.
    pub fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.code(), code, "{}", String::from_utf8_lossy(&self.body));
        assert!(
            self.message().contains(message),
            "message {:?} lacks {message:?}",
            self.message()
        );
        assert_request_id(self);
    }
}

impl Reply {
    /// Asserts Power BI's `pbi.error` shape, which 401 and 404 have: status, code, the
    /// same code in `pbi.error`, no message, and a RequestId.
    pub fn assert_pbi_error(&self, status: u16, code: &str) {
        let body = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "{body}");
        let json = self.json();
        assert_eq!(json["error"]["code"], code, "{body}");
        assert_eq!(json["error"]["pbi.error"]["code"], code, "{body}");
        assert!(json["error"].get("message").is_none(), "{body}");
        assert_request_id(self);
    }
}

pub fn assert_request_id(reply: &Reply) {
    let id = reply.header("RequestId").expect("a RequestId header");
    assert_eq!(id.len(), 36, "{id}");
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        self.send_limited(method, path, headers, body, usize::MAX)
    }

    /// Sends a request and reads at most `limit` bytes of the reply's body.
    pub fn send_limited(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        limit: usize,
    ) -> io::Result<Reply> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.reader.get_mut().write_all(&bytes)?;
        self.read_reply(limit)
    }

    /// Reads a reply, with at most `limit` bytes of body.
    pub fn read_reply(&mut self, limit: usize) -> io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, format!("no status line: {line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (k, v) = trimmed.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = find("content-length") {
            let len: usize = len.parse().unwrap();
            body.resize(len.min(limit), 0);
            self.reader.read_exact(&mut body)?;
        } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                if size == 0 {
                    self.reader.read_line(&mut line)?;
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                self.reader.read_line(&mut line)?;
                if body.len() >= limit {
                    break;
                }
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Sends one request on a new connection.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    Conn::open(addr).send(method, path, headers, body)
}

/// POSTs JSON with a bearer token.
pub fn post_json(addr: SocketAddr, path: &str, bearer: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {bearer}");
    send(
        addr,
        "POST",
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        &serde_json::to_vec(body).unwrap(),
    )
    .unwrap()
}

/// Signs in with a client secret; returns the token endpoint's reply.
pub fn token_request(emulator: &Emulator, tenant: &str, client_id: &str, secret: &str, scope: &str) -> Reply {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("scope", scope)
        .append_pair("client_secret", secret)
        .append_pair("grant_type", "client_credentials")
        .finish();
    send(
        emulator.addr(),
        "POST",
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap()
}

pub const SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";

/// Signs in as the fixture's principal; returns the access token.
pub fn sign_in(emulator: &Emulator) -> String {
    let ids = emulator.ids();
    let reply = token_request(emulator, &ids.tenant, &ids.client_id, &ids.client_secret, SCOPE);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["access_token"].as_str().unwrap().to_owned()
}
