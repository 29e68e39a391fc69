//! nginx as a reference row: a production event-driven server run on the same
//! cells as the models, with its own cgroup, so the report can say how the
//! models compare with it. The runner writes nginx's configuration into the
//! results folder (`reference/nginx-<cell>.conf`) and never touches the
//! system's nginx configuration; when `nginx` is not installed the cell is
//! recorded as "cannot run" with that reason and the run goes on.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The server key and model name of the reference row.
pub const NGINX: &str = "nginx";
/// Its id in tables (it is none of the documents' schemes).
pub const NGINX_ID: &str = "ref";
/// The body every answer carries: the models' answer (`proto`'s HTTP session).
pub const BODY: &str = "Hello, World!";

/// True for a server key that is a reference, not a model of the documents.
pub fn is_reference(server: &str) -> bool {
    server == NGINX
}

/// `nginx` on `PATH` (or in `/usr/sbin`), if installed.
pub fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|d| d.join("nginx")).find(|p| p.is_file())
}

/// A free loopback port (bound and released; nginx binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// nginx's configuration for one cell: one worker per server CPU, the models'
/// answer, access log off, descriptors for 19,000+ connections.
pub fn config(dir: &Path, port: u16, workers: usize, nofile: u64) -> String {
    let d = dir.display();
    format!(
        "worker_processes {workers};\n\
         worker_rlimit_nofile {nofile};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         daemon off;\n\
         events {{\n    worker_connections {nofile};\n    multi_accept on;\n}}\n\
         http {{\n    access_log off;\n    keepalive_requests 100000000;\n    keepalive_timeout 300s;\n    \
         client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
         uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    \
         server {{\n        listen 127.0.0.1:{port} backlog=4096;\n        \
         location / {{\n            default_type text/plain;\n            return 200 \"{BODY}\";\n        }}\n    }}\n}}\n"
    )
}

/// Write the configuration of a cell under `out/reference/` and return
/// `(nginx arguments, its prefix folder)`.
pub fn prepare(out: &Path, cell_id: &str, port: u16, workers: usize, nofile: u64) -> std::io::Result<Vec<String>> {
    let dir = out.join("reference").join(cell_id.replace('/', "__"));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(&dir, port, workers, nofile))?;
    Ok(vec![
        "-p".into(),
        dir.display().to_string(),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        dir.join("error.log").display().to_string(),
    ])
}

/// Wait until something accepts on `addr` (nginx prints no ready line).
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_serves_the_models_answer_on_loopback() {
        let c = config(Path::new("/tmp/x"), 4242, 2, 20_000);
        assert!(c.contains("worker_processes 2;"));
        assert!(c.contains("listen 127.0.0.1:4242 backlog=4096;"));
        assert!(c.contains("return 200 \"Hello, World!\";"));
        assert!(c.contains("access_log off;") && c.contains("worker_connections 20000;"));
        assert!(c.contains("pid /tmp/x/nginx.pid;"), "nothing outside its own folder");
    }
}
