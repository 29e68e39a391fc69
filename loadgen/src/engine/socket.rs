//! A client socket as both back ends open it: non-blocking, `TCP_NODELAY`,
//! bound to its source address if it has one, its connect issued.

use std::io;
use std::net::{IpAddr, SocketAddr};

use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
use socket2::{Domain, Protocol, Socket, Type};

/// A non-blocking TCP socket with `TCP_NODELAY`, bound to `source` if given,
/// its connect to `addr` issued (`EINPROGRESS`: completion is announced by the
/// socket turning writable, its outcome by `SO_ERROR`).
pub fn open(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        if ip.is_ipv4() {
            // Share source ports between sockets as long as the 4-tuple differs.
            setsockopt(&sock, IpBindAddressNoPort, &true)?;
        }
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(sock)
}
