//! One byte stream to an upstream or from a client: plain TCP or TLS over TCP (rustls),
//! with deadlines applied as socket timeouts before each blocking call (re-armed only
//! when the armed one would not do). It owns no
//! protocol logic; HTTP framing lives in `codec::http1` and `codec::chunked`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A connection's byte stream plus the socket timeouts last armed on it.
pub struct Transport {
    stream: Stream,
    /// What `SO_RCVTIMEO` / `SO_SNDTIMEO` hold now (None: unknown). Arming a timeout is a
    /// system call; on a keep-alive connection the same idle or request timeout is
    /// wanted again and again, so an armed value that is already right is left alone.
    armed_read: Cell<Option<Duration>>,
    armed_write: Cell<Option<Duration>>,
}

enum Stream {
    Plain(TcpStream),
    TlsClient(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    TlsServer(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

/// How much later than asked an armed timeout may fire and still be kept: a read or
/// write may end this much after its deadline instead of costing a system call now.
/// Never earlier: callers take a timeout as the deadline having passed.
const TIMEOUT_SLACK: Duration = Duration::from_millis(5);

impl Transport {
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport::new(Stream::Plain(tcp))
    }

    pub fn tls_client(tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Transport {
        Transport::new(Stream::TlsClient(Box::new(tls)))
    }

    pub fn tls_server(tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) -> Transport {
        Transport::new(Stream::TlsServer(Box::new(tls)))
    }

    fn new(stream: Stream) -> Transport {
        Transport {
            stream,
            armed_read: Cell::new(None),
            armed_write: Cell::new(None),
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self.stream, Stream::Plain(_))
    }

    pub fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::TlsClient(s) => &s.sock,
            Stream::TlsServer(s) => &s.sock,
        }
    }

    /// Arms the read timeout so that the next read returns by `deadline` (at most
    /// `TIMEOUT_SLACK` later). Returns `TimedOut` at once when the deadline has passed.
    pub fn read_by(&self, deadline: Instant) -> io::Result<()> {
        let left = time_left(deadline)?;
        arm(&self.armed_read, left, |t| self.tcp().set_read_timeout(t))
    }

    pub fn write_by(&self, deadline: Instant) -> io::Result<()> {
        let left = time_left(deadline)?;
        arm(&self.armed_write, left, |t| self.tcp().set_write_timeout(t))
    }

    /// Whether the peer has closed its side: a non-blocking peek that sees EOF. Used to
    /// notice a client that went away while we wait on a silent upstream, and a pooled
    /// upstream connection the server closed.
    pub fn peer_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        match crate::sys::peek_nonblocking(self.tcp(), &mut probe) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    pub fn shutdown(&self) {
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

fn time_left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    Ok(left.max(Duration::from_millis(1)))
}

/// Sets a socket timeout to `wanted` unless the armed one already fires no earlier and
/// at most `TIMEOUT_SLACK` later.
fn arm(
    armed: &Cell<Option<Duration>>,
    wanted: Duration,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if armed
        .get()
        .is_some_and(|a| a >= wanted && a - wanted <= TIMEOUT_SLACK)
    {
        return Ok(());
    }
    armed.set(None);
    set(Some(wanted))?;
    armed.set(Some(wanted));
    Ok(())
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
        match &mut self.stream {
            Stream::Plain(s) => s.read(buf),
            Stream::TlsClient(s) => s.read(buf),
            Stream::TlsServer(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => s.write(buf),
            Stream::TlsClient(s) => s.write(buf),
            Stream::TlsServer(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.flush(),
            Stream::TlsClient(s) => s.flush(),
            Stream::TlsServer(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arms `wanted` over `armed` and returns whether the socket was asked.
    fn arms(armed: &Cell<Option<Duration>>, wanted_ms: u64) -> bool {
        let mut called = false;
        arm(armed, Duration::from_millis(wanted_ms), |_| {
            called = true;
            Ok(())
        })
        .unwrap();
        called
    }

    #[test]
    fn a_timeout_is_rearmed_only_when_the_armed_one_would_not_do() {
        let armed = Cell::new(None);
        assert!(arms(&armed, 60_000), "unknown: set");
        assert!(!arms(&armed, 60_000), "the same again: kept");
        assert!(!arms(&armed, 59_996), "fires at most 4 ms late: kept");
        assert!(arms(&armed, 59_990), "would fire 10 ms late: set");
        assert_eq!(armed.get(), Some(Duration::from_millis(59_990)));
        assert!(arms(&armed, 59_991), "would fire early: set, however close");
        let failing = Cell::new(Some(Duration::from_secs(1)));
        let err = arm(&failing, Duration::from_secs(2), |_| {
            Err(io::Error::other("setsockopt failed"))
        });
        assert!(err.is_err());
        assert_eq!(failing.get(), None, "a failed set leaves the state unknown");
    }

    #[test]
    fn a_passed_deadline_is_a_timeout_without_a_system_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let transport = Transport::plain(tcp);
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            transport.read_by(past).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        transport
            .read_by(Instant::now() + Duration::from_secs(5))
            .unwrap();
        let armed = transport.armed_read.get().unwrap();
        assert!(armed <= Duration::from_secs(5) && armed > Duration::from_secs(4));
        // The kernel keeps it at its own granularity, never shorter.
        let kept = transport.tcp().read_timeout().unwrap().unwrap();
        assert!(kept >= armed && kept - armed <= TIMEOUT_SLACK, "{kept:?}");
    }

    #[test]
    fn peer_closed_sees_eof_but_not_pending_data_and_consumes_nothing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut transport = Transport::plain(tcp);
        assert!(!transport.peer_closed(), "open and silent");
        peer.write_all(b"x").unwrap();
        // A blocking peek waits until loopback delivered the byte.
        let mut probe = [0u8; 1];
        assert_eq!(transport.tcp().peek(&mut probe).unwrap(), 1);
        assert!(!transport.peer_closed(), "data waiting is not a close");
        drop(peer);
        let mut got = [0u8; 1];
        assert_eq!(
            transport.read(&mut got).unwrap(),
            1,
            "the byte is still there"
        );
        assert_eq!(&got, b"x");
        let closed = (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(2));
            transport.peer_closed()
        });
        assert!(closed, "EOF seen");
        assert_eq!(transport.read(&mut got).unwrap(), 0);
    }
}
