//! Sockets and limits shared by every model: the listener, RLIMIT_NOFILE,
//! somaxconn, and what to do when `accept` fails.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How long accepting pauses after running out of descriptors or memory.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Raise RLIMIT_NOFILE's soft limit to the hard one; returns the new soft limit.
pub fn raise_nofile() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// The kernel's cap on a listen backlog (`net.core.somaxconn`).
pub fn somaxconn() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(libc::SOMAXCONN)
}

/// A blocking listener with SO_REUSEADDR (and SO_REUSEPORT if asked) and a
/// backlog of somaxconn.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = bound_socket(addr, reuse_port)?;
    socket.listen(somaxconn())?;
    Ok(socket.into())
}

/// A socket bound to `addr` but not listening: reserves a port (port 0 picks
/// one) that SO_REUSEPORT listeners in other processes then share.
pub fn bound_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// Per-connection socket options every model applies after accept.
pub fn prepare(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

/// What an accept loop does with an `accept` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Retry at once (interrupted, or the connection died in the queue).
    Retry,
    /// Out of descriptors or memory: count it, pause [`ACCEPT_BACKOFF`], retry.
    /// Pending connections wait in the backlog meanwhile.
    Exhausted,
    /// Nothing to accept (non-blocking listener).
    WouldBlock,
    /// The listener was shut down (a stop) or is broken.
    Fatal,
}

/// Classify an `accept` error.
pub fn classify_accept_error(err: &io::Error) -> AcceptFailure {
    if err.kind() == io::ErrorKind::WouldBlock {
        return AcceptFailure::WouldBlock;
    }
    match err.raw_os_error() {
        Some(libc::EINTR | libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ECONNRESET) => AcceptFailure::Retry,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Exhausted,
        _ if crate::stop::requested() => AcceptFailure::Fatal,
        Some(libc::EAGAIN) => AcceptFailure::WouldBlock,
        _ => AcceptFailure::Fatal,
    }
}

/// The number of CPUs this process may run on (its affinity mask).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
