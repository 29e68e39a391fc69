//! Test support: run `c10k serve` as a real child process on port 0, and small
//! blocking clients with timeouts on every call.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_c10k");
/// Upper bound on any single wait in a test.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running `c10k serve`.
pub struct Server {
    child: Option<Child>,
    lines: Receiver<String>,
    pub addr: SocketAddr,
    pub pid: i32,
    pub ready_line: String,
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct Spawn {
    pub args: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) for the server process.
    pub nofile: Option<u64>,
    /// Run as this uid with this RLIMIT_NPROC (root only).
    pub uid_nproc: Option<(u32, u64)>,
}

impl Spawn {
    pub fn new(args: &[&str]) -> Spawn {
        Spawn { args: args.iter().map(|s| s.to_string()).collect(), ..Spawn::default() }
    }
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Server::spawn(Spawn::new(args)).expect("server did not become ready")
    }

    /// Start a server and wait for its ready line; `Err` carries its stderr.
    pub fn spawn(spec: Spawn) -> Result<Server, String> {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").arg("--addr").arg("127.0.0.1:0").args(&spec.args);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let nofile = spec.nofile;
        let uid_nproc = spec.uid_nproc;
        // SAFETY: between fork and exec the closure only makes raw syscalls
        // (setrlimit, setgid/setuid), which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(n) = nofile {
                    let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some((uid, nproc)) = uid_nproc {
                    let lim = libc::rlimit { rlim_cur: nproc, rlim_max: nproc };
                    if libc::setrlimit(libc::RLIMIT_NPROC, &lim) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {BIN}: {e}"))?;
        let lines = pump(child.stdout.take().expect("stdout"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("listening ") => {
                    let addr =
                        line.split_whitespace().nth(1).and_then(|a| a.parse().ok()).expect("address in ready line");
                    let pid = field(&line, "pid").and_then(|p| p.parse().ok()).expect("pid in ready line");
                    return Ok(Server { child: Some(child), lines, addr, pid, ready_line: line });
                }
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().map_err(|e| e.to_string())?;
                    return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// SIGTERM, wait for exit, and return the counters of the stats line.
    pub fn stop(mut self) -> Stopped {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        signal(self.pid, libc::SIGTERM);
        let Some(status) = wait_timeout(&mut child, PATIENCE) else {
            signal(self.pid, libc::SIGKILL);
            let _ = child.wait();
            panic!("server did not exit within {PATIENCE:?} of SIGTERM");
        };
        let took = started.elapsed();
        let mut stats = HashMap::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            if let Some(json) = line.strip_prefix("stats ") {
                stats = serde_json::from_str(json).expect("stats json");
                break;
            }
        }
        Stopped { took, success: status.success(), stats }
    }

    /// Processes whose parent is this server.
    pub fn children(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// CPU time (user + system) used by the server and its child processes
    /// (the workers of prefork and reuseport).
    pub fn cpu_time(&self) -> Duration {
        std::iter::once(self.pid).chain(self.children()).map(process_cpu_time).sum()
    }
}

fn process_cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(self.pid, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

pub struct Stopped {
    pub took: Duration,
    pub success: bool,
    pub stats: HashMap<String, u64>,
}

impl Stopped {
    pub fn stat(&self, name: &str) -> u64 {
        *self.stats.get(name).unwrap_or_else(|| panic!("no {name} in stats {:?}", self.stats))
    }
}

fn pump(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started.
    unsafe { libc::kill(pid, sig) };
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if after.split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie ("Z") is dead but not reaped; count it as alive (not cleaned up).
    !stat.is_empty()
}

/// A blocking client with timeouts.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new() }
    }

    /// Wrap an already connected stream (read timeout set by the caller).
    pub fn from_stream(stream: TcpStream) -> Client {
        Client { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Read exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().unwrap_or_else(|e| panic!("reading {n} bytes, got {}: {e}", self.buf.len()));
        }
        self.buf.drain(..n).collect()
    }

    /// Read one HTTP answer; returns (status, whole answer bytes).
    pub fn read_answer(&mut self, head_request: bool) -> (u16, Vec<u8>) {
        loop {
            match proto::client::frame_http_answer(&self.buf, head_request).expect("well-formed answer") {
                proto::client::AnswerFrame::Complete { len, status, .. } => {
                    return (status, self.buf.drain(..len).collect());
                }
                proto::client::AnswerFrame::Partial => self.fill().unwrap_or_else(|e| {
                    panic!("reading an answer after {:?}: {e}", String::from_utf8_lossy(&self.buf))
                }),
            }
        }
    }

    /// Expect the server to close: everything read until EOF (within PATIENCE).
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(()) => continue,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return std::mem::take(&mut self.buf),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return std::mem::take(&mut self.buf),
                Err(e) => panic!("expected EOF, got {e} after {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    /// Whether any byte (or EOF) arrives within `wait`.
    pub fn answers_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let got = match self.fill() {
            Ok(()) => true,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
        got
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// Check an answer byte for byte, with the Date value masked.
pub fn assert_hello(answer: &[u8]) {
    let text = String::from_utf8_lossy(answer);
    let masked = mask_date(&text);
    assert_eq!(
        masked,
        "HTTP/1.1 200 OK\r\nServer: c10k\r\nDate: <date>\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!",
        "answer {text:?}"
    );
}

pub fn mask_date(text: &str) -> String {
    match text.find("\r\nDate: ") {
        Some(i) => {
            let start = i + 8;
            let end = text[start..].find("\r\n").map_or(text.len(), |j| start + j);
            assert!(httpdate_ok(&text[start..end]), "bad Date {:?}", &text[start..end]);
            format!("{}<date>{}", &text[..start], &text[end..])
        }
        None => text.to_string(),
    }
}

fn httpdate_ok(date: &str) -> bool {
    date.len() == 29 && date.ends_with(" GMT")
}
