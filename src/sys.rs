//! The one place with `unsafe`: POSIX signal handlers, and one socket call std lacks. A
//! handler may only do async-signal-safe work, so it writes the signal number to a
//! self-pipe and returns; a normal thread reads the pipe and turns each byte into a
//! `Signal` on a channel. [`peek_nonblocking`] is `recv(MSG_PEEK | MSG_DONTWAIT)`.
//! Nothing else in the crate touches libc directly.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain and stop.
    Terminate,
    /// SIGHUP: reload the configuration and reopen files.
    Reload,
}

/// Write end of the self-pipe, read by the handler (a plain integer: safe to read there).
static PIPE_WRITE_FD: OnceLock<libc::c_int> = OnceLock::new();

extern "C" fn on_signal(signum: libc::c_int) {
    if let Some(&fd) = PIPE_WRITE_FD.get() {
        let byte = signum as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` lives on this stack frame for the
        // duration of the call and the length matches. A full pipe drops the signal, which
        // is fine: one pending signal of each kind is enough.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Installs handlers for SIGTERM, SIGINT and SIGHUP and returns the channel they report
/// on. Call once per process; later calls return an error.
pub fn install_signal_handlers() -> Result<Receiver<Signal>, String> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two c_ints for pipe(2) to fill.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let [read_fd, write_fd] = fds;
    PIPE_WRITE_FD
        .set(write_fd)
        .map_err(|_| "signal handlers are already installed".to_string())?;
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signum in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: `sigaction` is zero-initialisable plain data; we fill the handler and an
        // empty mask, and pass valid pointers. SA_RESTART keeps blocking calls in other
        // threads from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signum, &action, std::ptr::null_mut()) != 0 {
                return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
            }
        }
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || forward_signals(read_fd, tx))
        .map_err(|e| e.to_string())?;
    Ok(rx)
}

fn forward_signals(read_fd: libc::c_int, tx: Sender<Signal>) {
    loop {
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a valid, live u8.
        let n = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            let signal = if i32::from(byte) == libc::SIGHUP {
                Signal::Reload
            } else {
                Signal::Terminate
            };
            if tx.send(signal).is_err() {
                return;
            }
        } else if n == 0
            || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            return;
        }
    }
}

/// Peeks at what a socket has received without blocking and without switching it to
/// non-blocking mode: one system call where std needs three (`set_nonblocking(true)`,
/// `peek`, `set_nonblocking(false)`), on every reuse of a pooled connection. `Ok(0)` is
/// the peer's end of stream; nothing waiting is `WouldBlock`.
pub fn peek_nonblocking(socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the descriptor stays open for the call (the stream is borrowed) and `buf`
    // is a writable region of exactly `buf.len()` bytes that recv fills at most.
    let received = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(received).map_err(|_| io::Error::last_os_error())
}
