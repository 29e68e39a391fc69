//! `c10k load` against a real server: nginx (Debian's `nginx-light`), started
//! here on 127.0.0.1 with a configuration of its own in a temporary folder. A
//! path with a query, a custom header, a POST body and an answer nginx sends
//! chunked (gzip on the fly: the length is not known in advance), plus a 404.
//! nginx's access log says what it received. Without nginx the test prints why
//! it did not run and passes, so `make test` needs only Rust.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::load;

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// nginx in the foreground, one worker, its own folder; killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nginx(binary: &Path) -> Nginx {
    let dir = std::env::temp_dir().join(format!("c10k-nginx-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs")).expect("temporary folder");
    // A free port: bind port 0, read it, release it for nginx.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let d = dir.display();
    let conf = format!(
        r#"worker_processes 1;
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type text/plain;
    client_body_temp_path {d}/body;
    log_format probe '$request_method $request_uri $http_x_c10k $content_length $status';
    access_log {d}/logs/access.log probe;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /hello {{ return 200 "Hello, World!"; }}
        location = /form {{ return 200 "received"; }}
        location = /chunked {{
            gzip on;
            gzip_types text/plain;
            gzip_min_length 1;
            return 200 "a body long enough to be worth compressing, compressing, compressing";
        }}
    }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx { child, dir, addr: format!("127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&nginx.addr).is_err() {
        assert!(Instant::now() < deadline, "nginx did not listen on {}", nginx.addr);
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// One raw request, to see how nginx frames its answer.
fn raw_answer(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn nginx_path_header_post_body_and_chunked_answers() {
    let Some(binary) = nginx_binary() else {
        println!("SKIPPED nginx_path_header_post_body_and_chunked_answers: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let nginx = start_nginx(&binary);
    let addr = nginx.addr.clone();

    // nginx really answers /chunked chunked when gzip is accepted.
    let raw =
        raw_answer(&addr, "GET /chunked HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    assert!(raw.contains("Transfer-Encoding: chunked"), "{raw}");
    let out = load(&[
        &format!("http://{addr}/chunked?v=2"),
        "-H",
        "Accept-Encoding: gzip",
        "-H",
        "X-C10k: chunky",
        "--conns",
        "4",
        "--requests",
        "400",
        "--pipeline",
        "2",
        "-t",
        "1",
    ]);
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (400, 0), "{:?}", r.errors);
    assert_eq!(r.totals.status_classes.as_ref().map(|s| s.success), Some(400));

    let body = std::env::temp_dir().join(format!("c10k-nginx-body-{}", std::process::id()));
    std::fs::write(&body, b"field=value&other=1234").expect("body file");
    let out = load(&[
        &format!("http://{addr}/form"),
        "-m",
        "POST",
        "--body-file",
        body.to_str().expect("utf-8 path"),
        "-H",
        "X-C10k: posted",
        "--conns",
        "4",
        "--requests",
        "200",
        "-t",
        "1",
    ]);
    let _ = std::fs::remove_file(&body);
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (200, 0), "{:?}", r.errors);

    let out = load(&[&format!("http://{addr}/missing"), "--conns", "2", "--requests", "50", "-t", "1"]);
    let r = &out.report;
    assert_eq!(r.totals.status_classes.as_ref().map(|s| s.client_error), Some(50));
    assert_eq!(r.errors.bad_status, 50);

    // What nginx received, line by line: method, URI, X-C10k, Content-Length, status.
    let log = std::fs::read_to_string(nginx.dir.join("logs/access.log")).expect("access log");
    let count = |line: &str| log.lines().filter(|l| *l == line).count();
    assert_eq!(count("GET /chunked?v=2 chunky - 200"), 400, "{log}");
    assert_eq!(count("POST /form posted 22 200"), 200);
    assert_eq!(count("GET /missing - - 404"), 50);
}
