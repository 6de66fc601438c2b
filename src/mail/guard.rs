//! A bounded connection to the SMTP server.
//!
//! lettre's `SmtpConnection` reads replies with `BufRead::read_line`: a
//! server that never ends its line grows that buffer without limit (lettre
//! checks its own 100 kB cap only after a line end), and a server that sends
//! one byte every few seconds never trips the per-read timeout. lettre offers
//! no way to hand it our own stream, so Herald puts a relay in between:
//! lettre connects to a loopback listener that exists until that one
//! connection is accepted, and two threads copy bytes to and from the real
//! server, which Herald has connected itself. TLS (implicit or STARTTLS)
//! still runs end to end between lettre and the server: the relay only
//! copies bytes, and lettre checks the certificate against the configured
//! host name, not the address it connected to.
//!
//! The relay cuts both connections when
//! - the current **deadline** passes (one for connecting, greeting, TLS and
//!   login; then a new one for each message), or
//! - the server sends more than [`MAX_REPLY`] bytes since Herald last wrote
//!   anything (a reply can only answer something Herald sent).
//!
//! lettre then sees a closed connection and fails; [`Guard::cut`] tells why.
//! A local process that connects to the listener before lettre does gains
//! nothing it could not have by connecting to the server itself, and makes
//! this attempt fail.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most the server may send in answer to one write of Herald's. SMTP
/// replies are short (lettre refuses more than 100 kB); TLS handshakes and
/// certificate chains fit many times over.
pub(crate) const MAX_REPLY: usize = 1 << 20;

/// How often the relay threads look at the deadline while waiting.
const TICK: Duration = Duration::from_millis(100);

/// Why the relay cut the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The deadline passed.
    Deadline,
    /// The server sent more than [`MAX_REPLY`] bytes at once.
    TooLarge,
}

const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const DEADLINE: u8 = 2;
const TOO_LARGE: u8 = 3;

struct Shared {
    deadline: Mutex<Instant>,
    /// Bytes from the server since Herald last wrote.
    unanswered: AtomicUsize,
    state: AtomicU8,
    upstream: TcpStream,
    local: Mutex<Option<TcpStream>>,
}

impl Shared {
    fn deadline(&self) -> Instant {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the relay (the first reason wins) and unblocks both sides.
    fn close(&self, why: u8) {
        let _ = self.state.compare_exchange(OPEN, why, Ordering::SeqCst, Ordering::SeqCst);
        let _ = self.upstream.shutdown(Shutdown::Both);
        if let Some(l) = self.local.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = l.shutdown(Shutdown::Both);
        }
    }

    fn open(&self) -> bool {
        self.state.load(Ordering::SeqCst) == OPEN
    }

    /// Time left before the deadline, at most one tick; `None` when passed.
    fn wait(&self) -> Option<Duration> {
        let left = self.deadline().checked_duration_since(Instant::now())?;
        if left.is_zero() {
            None
        } else {
            Some(left.min(TICK))
        }
    }
}

/// The relay of one SMTP connection. Dropping it closes both sides.
pub(crate) struct Guard {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl Guard {
    /// Connects to `host:port` (each address tried within `connect_timeout`
    /// and before `deadline`) and starts the relay. The error is one
    /// sentence without the endpoint.
    pub(crate) fn connect(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        deadline: Instant,
    ) -> Result<Guard, String> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve the host name: {}", io_message(&e)))?
            .collect();
        let mut last: Option<io::Error> = None;
        let mut upstream = None;
        for addr in addrs {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                break;
            };
            match TcpStream::connect_timeout(&addr, connect_timeout.min(left)) {
                Ok(s) => {
                    upstream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let upstream = match (upstream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(io_message(&e)),
            (None, None) => return Err("timed out".to_string()),
        };
        let _ = upstream.set_nodelay(true);
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot relay: {}", io_message(&e)))?;
        let addr = listener.local_addr().map_err(|e| format!("cannot relay: {}", io_message(&e)))?;
        let shared = Arc::new(Shared {
            deadline: Mutex::new(deadline),
            unanswered: AtomicUsize::new(0),
            state: AtomicU8::new(OPEN),
            upstream,
            local: Mutex::new(None),
        });
        let relay = shared.clone();
        std::thread::Builder::new()
            .name("herald-smtp-relay".into())
            .spawn(move || relay_main(listener, relay))
            .map_err(|e| format!("cannot relay: {}", io_message(&e)))?;
        Ok(Guard { shared, addr })
    }

    /// Where lettre connects.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the time by which the current step must be done.
    pub(crate) fn set_deadline(&self, deadline: Instant) {
        *self.shared.deadline.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
    }

    /// Why the relay cut the connection, if it did.
    pub(crate) fn cut(&self) -> Option<Cut> {
        match self.shared.state.load(Ordering::SeqCst) {
            DEADLINE => Some(Cut::Deadline),
            TOO_LARGE => Some(Cut::TooLarge),
            _ => None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.close(CLOSED);
    }
}

/// Accepts lettre's connection, then copies server → lettre here and
/// lettre → server in a second thread.
fn relay_main(listener: TcpListener, shared: Arc<Shared>) {
    let local = match accept(&listener, &shared) {
        Some(s) => s,
        None => {
            shared.close(CLOSED);
            return;
        }
    };
    drop(listener);
    let (Ok(local_read), Ok(local_write)) = (local.try_clone(), local.try_clone()) else {
        shared.close(CLOSED);
        return;
    };
    *shared.local.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
    if !shared.open() {
        // Dropped while accepting.
        shared.close(CLOSED);
        return;
    }
    let up = shared.clone();
    let to_server =
        std::thread::Builder::new().name("herald-smtp-relay".into()).spawn(move || to_server(local_read, up));
    if to_server.is_err() {
        shared.close(CLOSED);
        return;
    }
    to_client(local_write, &shared);
}

fn accept(listener: &TcpListener, shared: &Shared) -> Option<TcpStream> {
    listener.set_nonblocking(true).ok()?;
    while shared.open() {
        match listener.accept() {
            Ok((s, peer)) if peer.ip().is_loopback() => {
                s.set_nonblocking(false).ok()?;
                let _ = s.set_nodelay(true);
                return Some(s);
            }
            Ok(_) => continue,
            Err(e) if timed_out(&e) => match shared.wait() {
                Some(_) => std::thread::sleep(Duration::from_millis(2)),
                None => {
                    shared.close(DEADLINE);
                    return None;
                }
            },
            Err(_) => return None,
        }
    }
    None
}

/// Server → lettre, counting what the server sends unasked.
fn to_client(mut local: TcpStream, shared: &Shared) {
    let mut upstream = match shared.upstream.try_clone() {
        Ok(s) => s,
        Err(_) => return shared.close(CLOSED),
    };
    let mut buf = vec![0u8; 16 * 1024];
    while shared.open() {
        let Some(wait) = shared.wait() else {
            return shared.close(DEADLINE);
        };
        let _ = upstream.set_read_timeout(Some(wait));
        match upstream.read(&mut buf) {
            Ok(0) => {
                let _ = local.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if shared.unanswered.fetch_add(n, Ordering::SeqCst) + n > MAX_REPLY {
                    return shared.close(TOO_LARGE);
                }
                if !write_before_deadline(&mut local, &buf[..n], shared) {
                    return;
                }
            }
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return shared.close(CLOSED),
        }
    }
}

/// lettre → server; every write resets the reply count.
fn to_server(mut local: TcpStream, shared: Arc<Shared>) {
    let mut upstream = match shared.upstream.try_clone() {
        Ok(s) => s,
        Err(_) => return shared.close(CLOSED),
    };
    let mut buf = vec![0u8; 16 * 1024];
    while shared.open() {
        let Some(wait) = shared.wait() else {
            return shared.close(DEADLINE);
        };
        let _ = local.set_read_timeout(Some(wait));
        match local.read(&mut buf) {
            Ok(0) => {
                // lettre is done (QUIT, or dropped the connection).
                let _ = upstream.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                shared.unanswered.store(0, Ordering::SeqCst);
                if !write_before_deadline(&mut upstream, &buf[..n], &shared) {
                    return;
                }
            }
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return shared.close(CLOSED),
        }
    }
}

/// Writes all of `data` unless the deadline passes first (a peer that reads
/// slowly cannot hold a writer past it). `false` when the relay is closed.
fn write_before_deadline(to: &mut TcpStream, mut data: &[u8], shared: &Shared) -> bool {
    while !data.is_empty() {
        if !shared.open() {
            return false;
        }
        let Some(wait) = shared.wait() else {
            shared.close(DEADLINE);
            return false;
        };
        let _ = to.set_write_timeout(Some(wait));
        match to.write(data) {
            Ok(0) => {
                shared.close(CLOSED);
                return false;
            }
            Ok(n) => data = &data[n..],
            Err(e) if timed_out(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                shared.close(CLOSED);
                return false;
            }
        }
    }
    true
}

/// An IO error as words: "timed out" rather than "Resource temporarily
/// unavailable (os error 11)", and without the OS error number.
pub(crate) fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
            .to_lowercase()
        }
    }
}
