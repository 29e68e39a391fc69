//! An in-test server (one mio thread) that answers correctly, or stalls, resets,
//! answers garbage, or never answers; and a helper to run the load generator
//! through its real argument parsing.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use proto::{Proto, Session, Work};

/// The I/O back ends every scenario runs over (`--engine`).
pub const ENGINES: [&str; 2] = ["mio", "uring"];

/// Run each scenario `fn name(engine: &str)` once per engine, as a test named
/// `engine::name` (`mio::...`, `uring::...`), as `tests/models.rs` runs its
/// scenarios over every server model.
#[macro_export]
macro_rules! over_engines {
    ($($name:ident),* $(,)?) => {
        mod mio {
            $( #[test] fn $name() { super::$name("mio") } )*
        }
        mod uring {
            $( #[test] fn $name() { super::$name("uring") } )*
        }
    };
}

/// How the test server behaves.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Answer every request (proto's own server session).
    Serve(Proto),
    /// Serve, but answer nothing from `at` to `at + len` after the server started.
    Stall { proto: Proto, at: Duration, len: Duration },
    /// Reset every connection (RST) once a request arrives.
    Reset,
    /// Answer every request with bytes that are not HTTP.
    Garbage,
    /// Accept and read, never answer.
    Silent,
    /// Answer every request `404 Not Found`.
    NotFound,
    /// Answer, and close the connection (`Connection: close`) after every `n`th answer.
    CloseEvery(u32),
}

const OK_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const CLOSE_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

pub struct TestServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(mode: Mode) -> TestServer {
        // A deep accept queue (mio's default is 1024): the 10,000-connection test
        // must not lose SYNs while this one thread is busy.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).expect("bind 127.0.0.1:0");
        socket.listen(4096).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut listener = TcpListener::from_std(socket.into());
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let handle = std::thread::spawn(move || serve(&mut listener, mode, &s, &a));
        TestServer { addr, accepted, stop, handle: Some(handle) }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Client {
    stream: TcpStream,
    session: Session,
    /// Requests seen (ends of heads), for the modes that answer by hand.
    requests: u32,
    /// The last bytes read, to find a head end split across reads.
    tail: Vec<u8>,
}

/// Count request heads (`\r\n\r\n`) in `data`, continuing from `tail`.
fn count_heads(tail: &mut Vec<u8>, data: &[u8]) -> u32 {
    tail.extend_from_slice(data);
    let n = tail.windows(4).filter(|w| *w == b"\r\n\r\n").count() as u32;
    let keep = tail.len().min(3);
    let cut = tail.len() - keep;
    // Keep only what could start a head end (and not a complete one).
    let rest: Vec<u8> = tail[cut..].to_vec();
    *tail =
        if rest.ends_with(b"\r\n\r") || rest.ends_with(b"\r\n") || rest.ends_with(b"\r") { rest } else { Vec::new() };
    n
}

const LISTENER: Token = Token(usize::MAX);

fn serve(listener: &mut TcpListener, mode: Mode, stop: &AtomicBool, accepted: &AtomicU64) {
    let mut poll = Poll::new().unwrap();
    poll.registry().register(listener, LISTENER, Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(1024);
    let mut clients: HashMap<usize, Client> = HashMap::new();
    let mut next = 0usize;
    let started = Instant::now();
    let mut was_stalled = false;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(5))).unwrap();
        let stalled = match mode {
            Mode::Stall { at, len, .. } => (at..at + len).contains(&started.elapsed()),
            _ => false,
        };
        if was_stalled && !stalled {
            let keys: Vec<usize> = clients.keys().copied().collect();
            for k in keys {
                drive(&mut clients, k, mode, &mut buf);
            }
        }
        was_stalled = stalled;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true).unwrap();
                            poll.registry()
                                .register(&mut stream, Token(next), Interest::READABLE | Interest::WRITABLE)
                                .unwrap();
                            let proto = match mode {
                                Mode::Serve(p) | Mode::Stall { proto: p, .. } => p,
                                _ => Proto::Http,
                            };
                            clients.insert(
                                next,
                                Client {
                                    stream,
                                    session: Session::new(proto, Work::default()),
                                    requests: 0,
                                    tail: Vec::new(),
                                },
                            );
                            next += 1;
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
            } else if !stalled {
                drive(&mut clients, ev.token().0, mode, &mut buf);
            }
        }
    }
}

/// Read what is there, answer per the mode, write what can be written.
fn drive(clients: &mut HashMap<usize, Client>, key: usize, mode: Mode, buf: &mut [u8]) {
    let Some(c) = clients.get_mut(&key) else { return };
    let mut close = false;
    loop {
        match c.stream.read(buf) {
            Ok(0) => {
                c.session.peer_closed();
                close = true;
                break;
            }
            Ok(n) => match mode {
                Mode::Serve(_) | Mode::Stall { .. } => c.session.receive(&buf[..n]),
                Mode::Reset => {
                    socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO)).unwrap();
                    clients.remove(&key);
                    return;
                }
                Mode::Garbage => {
                    let _ = c.stream.write_all(b"garbage\r\n\r\n");
                }
                Mode::Silent => {}
                Mode::NotFound => {
                    for _ in 0..count_heads(&mut c.tail, &buf[..n]) {
                        let _ = c.stream.write_all(NOT_FOUND);
                    }
                }
                Mode::CloseEvery(every) => {
                    for _ in 0..count_heads(&mut c.tail, &buf[..n]) {
                        c.requests += 1;
                        if c.requests % every == 0 {
                            let _ = c.stream.write_all(CLOSE_ANSWER);
                            clients.remove(&key);
                            return;
                        }
                        let _ = c.stream.write_all(OK_ANSWER);
                    }
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                close = true;
                break;
            }
        }
    }
    loop {
        let out = c.session.pending_output();
        if out.is_empty() {
            break;
        }
        match c.stream.write(out) {
            Ok(n) => c.session.consume_output(n),
            Err(_) => break,
        }
    }
    if close || c.session.is_done() {
        clients.remove(&key);
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: loadgen::cli::LoadArgs,
}

/// Run the load generator with these `c10k load` arguments over `engine`
/// (`--engine`), or return why that engine cannot run here.
pub fn load_on(engine: &str, args: &[&str]) -> Result<loadgen::Outcome, String> {
    if engine == "uring" {
        loadgen::engine::check(loadgen::settings::IoEngine::Uring).map_err(|e| e.to_string())?;
    }
    let mut all = args.to_vec();
    all.extend(["--engine", engine]);
    Ok(load(&all))
}

/// Run the load generator with these `c10k load` arguments.
pub fn load(args: &[&str]) -> loadgen::Outcome {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).expect("arguments parse");
    let config = loadgen::cli::config_from_args(&cli.load).expect("valid config");
    loadgen::run_config(&config, false).expect("run completes")
}
