//! The chat room (`--proto chat`, document 002 §5) against every model that
//! shares one, run as the real binary; and the refusal of every model that
//! cannot. Each row of `chat_rows!` names a model variant, its arguments and
//! how many members it holds at once (`UNBOUNDED`, or a pool's workers: the
//! scenarios stay within it). The registry says which models share a room;
//! `every_model_has_a_chat_row` holds the table to it.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use servers::chat::ChatRoom;

const UNBOUNDED: usize = usize::MAX;

/// A member: one connection, read line by line with a timeout on every read.
struct Member {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Member {
    fn connect(addr: SocketAddr) -> Member {
        let client = Client::connect(addr);
        Member { stream: client.stream, buf: Vec::new() }
    }

    /// A member whose receive buffer is as small as the kernel allows, so
    /// that a member that does not read fills up quickly.
    fn connect_small(addr: SocketAddr) -> Member {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect_timeout(&addr.into(), PATIENCE).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Member { stream, buf: Vec::new() }
    }

    fn send(&mut self, value: &Value) {
        let mut line = serde_json::to_vec(value).unwrap();
        line.push(b'\n');
        self.stream.write_all(&line).expect("send");
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next line, parsed; `None` at end of stream.
    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {line:?}")));
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading a line after {:?}: {e}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    /// The next line, which must be of `kind`.
    fn expect(&mut self, kind: &str) -> Value {
        let line = self.next().unwrap_or_else(|| panic!("end of stream, expected {kind}"));
        assert_eq!(line["type"], kind, "{line}");
        line
    }

    /// Close our side and wait for the server to close its side: by then the
    /// server has counted the connection.
    fn leave(mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        while self.next().is_some() {}
    }

    fn join(&mut self, nickname: &str) -> Value {
        self.send(&json!({"type": "join", "nickname": nickname}));
        self.expect("joined")
    }
}

fn start(args: &[&str]) -> Server {
    let mut all = args.to_vec();
    all.extend(["--proto", "chat"]);
    Server::start(&all)
}

/// Join, notices, broadcast to every member (the sender included), private,
/// list, quit.
fn room_basics(args: &[&str], capacity: usize) {
    assert!(capacity >= 4);
    let server = start(args);
    let names = ["Alice", "Bob", "Carol", "Dave"];
    let mut members: Vec<Member> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut m = Member::connect(server.addr);
        let ack = m.join(name);
        assert_eq!((ack["nickname"].as_str(), ack["users"].as_u64()), (Some(*name), Some(i as u64 + 1)));
        for earlier in &mut members {
            let notice = earlier.expect("user_joined");
            assert_eq!(notice["nickname"], *name);
            assert_eq!(notice["timestamp"].as_str().map(str::len), Some(19), "{notice}");
        }
        members.push(m);
    }
    members[0].send(&json!({"type": "message", "content": "Hello everyone!"}));
    for m in &mut members {
        let line = m.expect("broadcast");
        assert_eq!((line["from"].as_str(), line["content"].as_str()), (Some("Alice"), Some("Hello everyone!")));
        assert_eq!(line["timestamp"].as_str().map(str::len), Some(19), "{line}");
    }
    members[0].send(&json!({"type": "private", "to": "Bob", "content": "Hi Bob!"}));
    let private = members[1].expect("private");
    assert_eq!((private["from"].as_str(), private["content"].as_str()), (Some("Alice"), Some("Hi Bob!")));
    members[2].send(&json!({"type": "list_users"}));
    assert_eq!(members[2].expect("users")["users"], json!(["Alice", "Bob", "Carol", "Dave"]));
    // Nobody but Bob got the private line: the next line everyone else gets is the next broadcast.
    members[3].send(&json!({"type": "quit"}));
    members[3].expect("bye");
    assert!(members[3].next().is_none(), "the server closes after bye");
    for m in &mut members[..3] {
        let left = m.expect("user_left");
        assert_eq!((left["nickname"].as_str(), left["reason"].as_str()), (Some("Dave"), Some("quit")));
    }
    drop(members.pop());
    // A member that just disconnects leaves too.
    drop(members.pop());
    for m in &mut members {
        let left = m.expect("user_left");
        assert_eq!((left["nickname"].as_str(), left["reason"].as_str()), (Some("Carol"), Some("closed")));
    }
    members[1].send(&json!({"type": "message", "content": "bye"}));
    for m in &mut members {
        assert_eq!(m.expect("broadcast")["from"], "Bob");
    }
    for m in members {
        m.leave();
    }
    let stopped = server.stop();
    assert!(stopped.success);
    assert_eq!(stopped.stat("accepted"), 4);
    assert_eq!(stopped.stat("slow_members_dropped"), 0);
}

/// Bad JSON, an unknown type, a missing field, a message before joining, a
/// nickname taken: an error line each, the connection stays open. A line over
/// the bound: an error line and a close.
fn bad_lines(args: &[&str], _capacity: usize) {
    let server = start(args);
    let mut a = Member::connect(server.addr);
    a.send_raw(b"{this is not json\n");
    assert!(a.expect("error")["message"].as_str().unwrap().starts_with("bad JSON"));
    a.send(&json!({"type": "dance"}));
    assert!(a.expect("error")["message"].as_str().unwrap().contains("unknown variant"));
    a.send(&json!({"type": "join"}));
    assert!(a.expect("error")["message"].as_str().unwrap().contains("nickname"));
    a.send(&json!({"type": "message", "content": "too early"}));
    assert_eq!(a.expect("error")["message"], "join first");
    a.join("Alice");
    let mut b = Member::connect(server.addr);
    b.send(&json!({"type": "join", "nickname": "Alice"}));
    assert!(b.expect("error")["message"].as_str().unwrap().contains("taken"));
    b.send_raw(b"\r\n{\"type\":\"join\",\"nickname\":\"Bob\"}\r\n");
    b.expect("joined");
    a.expect("user_joined");
    let mut long = b"{\"type\":\"message\",\"content\":\"".to_vec();
    long.resize(5000, b'x');
    long.extend_from_slice(b"\"}\n");
    b.send_raw(&long);
    assert!(b.expect("error")["message"].as_str().unwrap().contains("line over"));
    assert!(b.next().is_none(), "closed after an over-long line");
    let left = a.expect("user_left");
    assert_eq!(left["nickname"], "Bob");
    a.send(&json!({"type": "message", "content": "still here"}));
    assert_eq!(a.expect("broadcast")["content"], "still here");
    drop(b);
    a.leave();
    let stopped = server.stop();
    assert!(stopped.success);
    assert_eq!(stopped.stat("protocol_errors"), 3 + 1, "three lines that are no command, and the long one");
}

/// A member that joins and never reads is dropped once its outbox passes the
/// bound, counted in `slow_members_dropped`, and announced as `slow`; the
/// others get every broadcast, in order, meanwhile and after.
fn slow_member_dropped(args: &[&str], capacity: usize) {
    assert!(capacity >= 4);
    let server = start(args);
    let mut sender = Member::connect(server.addr);
    sender.join("sender");
    let mut readers: Vec<Member> = (0..2).map(|_| Member::connect(server.addr)).collect();
    for (i, r) in readers.iter_mut().enumerate() {
        r.join(&format!("reader{i}"));
    }
    let mut slow = Member::connect_small(server.addr);
    slow.join("slow");
    // Everyone in the room now: the sender reads its own broadcasts too.
    let content = "x".repeat(3000);
    let dropped = AtomicBool::new(false);
    // Broadcasts read by the two readers and the sender: the sender stays at
    // most WINDOW ahead of the slowest. 16 lines of 3 KB fit in the outbox
    // bound alone, whatever the socket buffers hold, so only the member that
    // never reads can be slow (64 did not, with a send buffer not yet grown).
    const WINDOW: u64 = 16;
    // Readers 0 and 1, the sender's own copies (2), and the latecomer (3), which paces the
    // sender only from its first broadcast on (until then u64::MAX, out of the minimum):
    // a reading member must never be the one that falls behind, however loaded the machine.
    let progress: [AtomicU64; 4] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(u64::MAX)];
    let limit = 20_000; // 60 MB: far more than any socket buffers hold
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (i, mut r) in readers.drain(..).chain(std::iter::once(Member::connect(server.addr))).enumerate() {
            let dropped = &dropped;
            let progress = &progress;
            let is_spare = i == 2;
            handles.push(s.spawn(move || {
                if is_spare {
                    // A member who joins after the slow one left still gets the rest.
                    while !dropped.load(Ordering::Acquire) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    r.join("latecomer");
                }
                let (mut next, mut saw_slow) = (None::<u64>, false);
                loop {
                    let line = r.next().expect("a reader is never dropped");
                    match line["type"].as_str() {
                        Some("user_left") if line["reason"] == "slow" => {
                            assert_eq!(line["nickname"], "slow");
                            saw_slow = true;
                            dropped.store(true, Ordering::Release);
                        }
                        Some("broadcast") if line["content"] == "done" => return (next, saw_slow),
                        Some("broadcast") => {
                            let n: u64 = line["content"].as_str().unwrap().split(' ').next().unwrap().parse().unwrap();
                            if let Some(expected) = next {
                                assert_eq!(n, expected, "reader {i}: a broadcast lost or out of order");
                            }
                            next = Some(n + 1);
                            progress[if is_spare { 3 } else { i }].store(n + 1, Ordering::Release);
                        }
                        _ => {}
                    }
                }
            }));
        }
        // The sender's own copies, read on another thread so that it is never slow itself.
        let mut own = Member { stream: sender.stream.try_clone().unwrap(), buf: Vec::new() };
        let progress = &progress;
        let own_reader = s.spawn(move || {
            let mut count = 0u64;
            while let Some(line) = own.next() {
                if line["type"] == "broadcast" {
                    if line["content"] == "done" {
                        return count;
                    }
                    count += 1;
                    progress[2].store(count, Ordering::Release);
                }
            }
            panic!("the sender was disconnected");
        });
        let mut sent = 0u64;
        let behind =
            |sent: u64| sent.saturating_sub(progress.iter().map(|p| p.load(Ordering::Acquire)).min().unwrap_or(0));
        while sent < limit && Instant::now() < deadline {
            while behind(sent) > WINDOW && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            sender.send(&json!({"type": "message", "content": format!("{sent} {content}")}));
            sent += 1;
            if dropped.load(Ordering::Acquire) && sent % 100 == 0 {
                break;
            }
        }
        assert!(dropped.load(Ordering::Acquire), "no slow member dropped after {sent} broadcasts of 3 KB");
        // A few more once the latecomer has surely joined.
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..50 {
            while behind(sent) > WINDOW && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
            sender.send(&json!({"type": "message", "content": format!("{sent} {content}")}));
            sent += 1;
        }
        sender.send(&json!({"type": "message", "content": "done"}));
        for (i, h) in handles.into_iter().enumerate() {
            let (next, saw_slow) = h.join().unwrap();
            if i < 2 {
                assert_eq!(next, Some(sent), "reader {i} got every broadcast");
                assert!(saw_slow, "reader {i} was told the slow member left");
            } else {
                assert!(next.is_some_and(|n| n <= sent && n > 0), "the latecomer got the last broadcasts");
            }
        }
        assert_eq!(own_reader.join().unwrap(), sent, "the sender got its own broadcasts");
        sent
    });
    // The slow member's connection ends (after whatever its socket held).
    slow.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sink = [0u8; 65536];
    let until = Instant::now() + PATIENCE;
    while Instant::now() < until {
        match slow.stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(Instant::now() < until, "the slow member's connection was not closed");
    drop((sender, slow));
    let stopped = server.stop();
    assert_eq!(stopped.stat("slow_members_dropped"), 1, "after {sent} broadcasts");
}

/// `c10k serve --proto chat` with a model that cannot share a room: no ready
/// line, the reason on stderr, a non-zero exit.
fn refused(args: &[&str]) {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--proto", "chat"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn c10k");
    let status = wait_timeout(&mut child, PATIENCE).expect("a refused model exits at once");
    let mut stderr = String::new();
    let mut stdout = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(!stdout.contains("listening"), "{stdout}");
    let model = args[1];
    let reason = servers::Model::from_name(model).unwrap().info().chat.text();
    assert!(stderr.contains(&format!("--proto chat is not served by --model {model}: {reason}")), "stderr: {stderr}");
}

macro_rules! chat_rows {
    ($($name:ident: [$($arg:literal),*], capacity $cap:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::UNBOUNDED;
            const ARGS: &[&str] = &[$($arg),*];
            #[test] fn room_basics() { super::room_basics(ARGS, $cap) }
            #[test] fn bad_lines() { super::bad_lines(ARGS, $cap) }
            #[test] fn slow_member_dropped() { super::slow_member_dropped(ARGS, $cap) }
        }
    )*
        const ROWS: &[&[&str]] = &[$(&[$($arg),*]),*];
    };
}

macro_rules! refusals {
    ($($name:ident: [$($arg:literal),*];)*) => {
        mod refused {$(
            #[test] fn $name() { super::refused(&[$($arg),*]) }
        )*}
        const REFUSED: &[&[&str]] = &[$(&[$($arg),*]),*];
    };
}

/// The registry says which models share a room; each has a row, and each of
/// the others a refusal test.
#[test]
fn every_model_has_a_chat_row() {
    for m in servers::model::Model::ALL {
        let named = |rows: &[&[&str]]| rows.iter().any(|row| row.windows(2).any(|w| w == ["--model", m.name()]));
        match m.info().chat {
            ChatRoom::Shared(_) => assert!(named(ROWS), "model {} shares a room but has no chat row", m.name()),
            ChatRoom::Refused(_) => assert!(named(REFUSED), "model {} refuses chat but no test says so", m.name()),
        }
    }
}

chat_rows! {
    thread: ["--model", "thread"], capacity UNBOUNDED;
    pool: ["--model", "pool", "--workers", "8"], capacity 8;
    reactor: ["--model", "reactor"], capacity UNBOUNDED;
    reactor_level: ["--model", "reactor", "--trigger", "level"], capacity UNBOUNDED;
    reactor_poll: ["--model", "reactor", "--backend", "poll"], capacity UNBOUNDED;
    reactor_select: ["--model", "reactor", "--backend", "select"], capacity UNBOUNDED;
    reactor_pool: ["--model", "reactor-pool", "--workers", "4"], capacity UNBOUNDED;
    multi_reactor: ["--model", "multi-reactor", "--threads", "2"], capacity UNBOUNDED;
    multi_reactor_pool: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "4"], capacity UNBOUNDED;
    tokio: ["--model", "tokio", "--threads", "2"], capacity UNBOUNDED;
    uring: ["--model", "uring", "--threads", "2"], capacity UNBOUNDED;
}

refusals! {
    iterative: ["--model", "iterative"];
    fork: ["--model", "fork"];
    prefork: ["--model", "prefork", "--procs", "2"];
    reuseport: ["--model", "reuseport", "--procs", "2"];
    reactor_task: ["--model", "reactor-task"];
    reactor_conn_thread: ["--model", "reactor-conn-thread"];
}
