//! Serving one connection with blocking calls, on the calling thread, to the
//! end: what iterative, fork, thread, prefork and pool models do per client.
//! A chat member (thread, pool) is served by [`crate::chat::threads`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use proto::{Session, READ_BUF_SIZE};

use crate::{stop, Shared, Stats};

/// Serve `stream` until the peer leaves or the session closes. The 16 KiB read
/// buffer lives on this thread's stack.
pub fn serve(mut stream: TcpStream, shared: &Shared) {
    if shared.proto == proto::Proto::Chat {
        return crate::chat::threads::serve(stream, shared);
    }
    serve_borrowed(&mut stream, shared);
}

/// [`serve`] without closing the socket at the end.
pub fn serve_borrowed(stream: &mut TcpStream, shared: &Shared) {
    let _ = crate::net::prepare(stream);
    let mut session = Session::new(shared.proto, shared.work);
    let mut buf = [0u8; READ_BUF_SIZE];
    let clean = drive(stream, &mut session, &mut buf);
    // Count before the peer can see the close, so counters are final once it does.
    shared.stats.connection_closed(&session);
    if clean {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// Returns whether the session ended by protocol (as opposed to an I/O error).
fn drive(stream: &mut TcpStream, session: &mut Session, buf: &mut [u8]) -> bool {
    loop {
        while !session.pending_output().is_empty() {
            match stream.write(session.pending_output()) {
                Ok(0) => return false,
                Ok(n) => session.consume_output(n),
                Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
                Err(_) => return false,
            }
        }
        if session.is_done() {
            return true;
        }
        match stream.read(buf) {
            Ok(0) => session.peer_closed(),
            Ok(n) => session.receive(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
            Err(_) => return false,
        }
    }
}

/// Convenience for models that count a connection as soon as it is accepted.
pub fn accepted(stats: &Stats) {
    Stats::add(&stats.accepted, 1);
}
