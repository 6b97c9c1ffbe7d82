//! One byte stream to an upstream or from a client: plain TCP or TLS over TCP (rustls),
//! with deadlines applied as socket timeouts before each blocking call. It owns no
//! protocol logic; HTTP framing lives in `codec::http1` and `codec::chunked`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub enum Transport {
    Plain(TcpStream),
    TlsClient(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    TlsServer(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::TlsClient(s) => &s.sock,
            Transport::TlsServer(s) => &s.sock,
        }
    }

    /// Arms the read timeout so that the next read returns by `deadline`.
    /// Returns `TimedOut` at once when the deadline has already passed.
    pub fn read_by(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.tcp()
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
    }

    pub fn write_by(&self, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.tcp()
            .set_write_timeout(Some(left.max(Duration::from_millis(1))))
    }

    /// Whether the peer has closed its side: a non-blocking peek that sees EOF. Used to
    /// notice a client that went away while we wait on a silent upstream.
    pub fn peer_closed(&self) -> bool {
        let tcp = self.tcp();
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let closed = match tcp.peek(&mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        };
        let _ = tcp.set_nonblocking(false);
        closed
    }

    pub fn shutdown(&self) {
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

/// True for the error kinds a socket timeout produces.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::TlsClient(s) => s.read(buf),
            Transport::TlsServer(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::TlsClient(s) => s.write(buf),
            Transport::TlsServer(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::TlsClient(s) => s.flush(),
            Transport::TlsServer(s) => s.flush(),
        }
    }
}
