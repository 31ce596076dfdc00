//! The TLS path under test: a loopback CONNECT proxy that counts the tunnels it opens,
//! and certificates that must not verify (another name, expired, an unknown authority).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use pbi_embed_emulator::{Emulator, Tls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// An HTTP CONNECT proxy on `127.0.0.1` that tunnels to loopback addresses only and
/// records each tunnel's target. Stops when dropped.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    tunnels: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port.
    ///
    /// # Panics
    /// When it cannot bind.
    #[must_use]
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopping) = (Arc::clone(&tunnels), Arc::clone(&stop));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || {
                    let _ = tunnel(stream, &seen);
                });
            }
        });
        Self { addr, tunnels, stop }
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The targets (`host:port`) of the tunnels opened so far.
    ///
    /// # Panics
    /// When a tunnel thread panicked while holding the record.
    #[must_use]
    pub fn tunnels(&self) -> Vec<String> {
        self.tunnels.lock().expect("tunnel record").clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads a `CONNECT host:port` head, connects (loopback only), answers 200 and copies
/// bytes both ways until either side closes.
fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.by_ref().take(8192).read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.by_ref().take(8192).read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut words = request_line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let mut client = client;
        client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let loopback = target
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.ip().is_loopback())
        .or_else(|| {
            target
                .strip_prefix("localhost:")
                .and_then(|p| format!("127.0.0.1:{p}").parse().ok())
        });
    let mut client = client;
    let Some(addr) = loopback else {
        client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    };
    let upstream = TcpStream::connect(addr)?;
    seen.lock()
        .map_err(|_| io::Error::other("poisoned"))?
        .push(target.to_owned());
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    client.set_read_timeout(None)?;
    // Whatever the reader buffered past the head belongs to the tunnel.
    let buffered = reader.buffer().to_vec();
    let (mut up_write, mut up_read) = (upstream.try_clone()?, upstream);
    up_write.write_all(&buffered)?;
    let mut down = client.try_clone()?;
    let upward = thread::spawn(move || {
        let _ = io::copy(&mut reader, &mut up_write);
        let _ = up_write.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut up_read, &mut down);
    let _ = down.shutdown(Shutdown::Write);
    let _ = upward.join();
    Ok(())
}

/// A certificate authority (PEM) and a certificate it signed, for an emulator to serve.
#[derive(Debug)]
pub struct Certificate {
    /// The authority's certificate, PEM, for the client to trust.
    pub ca_pem: String,
    /// The emulator's TLS settings.
    pub tls: Tls,
}

/// Certificates that must not verify, with what each one is.
///
/// # Panics
/// When a certificate cannot be made.
#[must_use]
pub fn bad_certificates() -> Vec<(&'static str, Certificate)> {
    let good_names = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    let expired = {
        let mut params = CertificateParams::new(good_names.to_vec()).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        params
    };
    let unknown_authority = Certificate {
        // The client trusts another authority than the one that signed the certificate.
        ca_pem: signed(CertificateParams::new(good_names.to_vec()).expect("params")).ca_pem,
        tls: signed(CertificateParams::new(good_names.to_vec()).expect("params")).tls,
    };
    vec![
        (
            "a certificate for another name",
            signed(CertificateParams::new(vec!["elsewhere.example".to_owned()]).expect("params")),
        ),
        ("an expired certificate", signed(expired)),
        ("a certificate from an unknown authority", unknown_authority),
    ]
}

/// A fresh authority and `leaf` signed by it.
fn signed(leaf: CertificateParams) -> Certificate {
    let (ca_pem, certificate, key) = signed_pem(leaf);
    Certificate {
        ca_pem,
        tls: Tls::from_pem(certificate, key),
    }
}

/// A fresh authority and `leaf` signed by it: the authority, the certificate and its key
/// (PEM).
fn signed_pem(mut leaf: CertificateParams) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::new()).expect("CA params");
    ca.distinguished_name.push(DnType::CommonName, "testkit CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_certificate = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let certificate = leaf.signed_by(&key, &issuer).expect("leaf certificate");
    (ca_certificate.pem(), certificate.pem(), key.serialize_pem())
}

/// An emulator over HTTPS with a generated certificate, and its CA (PEM).
///
/// # Panics
/// When it cannot start.
#[must_use]
pub fn tls_emulator() -> (Emulator, String) {
    let emulator = Emulator::builder()
        .tls(Tls::generated())
        .start()
        .expect("start the TLS emulator");
    let ca = emulator
        .ca_pem()
        .expect("a generated certificate's CA")
        .to_owned();
    (emulator, ca)
}

/// A fresh authority and a server certificate it signed for `127.0.0.1` and `localhost`:
/// the authority (PEM), the certificate (PEM) and its private key (PEM, PKCS#8).
///
/// # Panics
/// When a certificate cannot be made.
#[must_use]
pub fn server_certificate() -> (String, String, String) {
    signed_pem(CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params"))
}
