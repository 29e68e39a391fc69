//! A pair of network namespaces made for one run and always removed.
//!
//! T5 compares kernel defaults with the documents' tuning (003 §6.2), and most
//! of that tuning is `net.*` sysctls the kernel keeps per network namespace:
//! written inside a namespace made for the run, they change nothing on the
//! host. [`NsPair`] is two namespaces, the server's and the client's, joined by
//! a veth pair (10.213.0.1 on the server's end, 10.213.0.2 and up on the
//! client's), each with its loopback up: the client's connections cross a
//! device as they would between two machines, and each side's settings live
//! where they act (the accept queue in the server's, source ports and TIME_WAIT
//! reuse in the client's). Loopback inside one namespace would hide part of the
//! difference: the default `tcp_tw_reuse = 2` reuses TIME_WAIT ports for
//! loopback traffic only.
//!
//! Programs enter a namespace through `ip netns exec NS PROGRAM`, which execs
//! the program in place, so its pid, CPU mask, limits and cgroup (set before
//! exec, see [`crate::child`]) are kept. Names are `c10k-<runner pid>-<n>-s`
//! and `-c`; [`NsPair`]'s `Drop` deletes both (the veth pair goes with them),
//! also on a failed run and on Ctrl-C, and [`clean_leftovers`] deletes those
//! of a runner that was killed. Root only: [`available`] says why not.
//!
//! A setting is per namespace when it is a `net.*` key that exists inside a new
//! namespace: the kernel shows a non-initial namespace only its per-namespace
//! tables (`net.core.netdev_max_backlog` and `net.ipv4.tcp_mem`, for example,
//! are absent there). Keys outside `net.*` (`fs.file-max`) are machine-wide
//! however they look from inside, and are never written.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every namespace this module makes starts with this.
pub const PREFIX: &str = "c10k-";
/// The pair's subnet: the server at .1, the client from .2.
pub const SUBNET: [u8; 3] = [10, 213, 0];

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Where `ip` is (iproute2), if anywhere.
pub fn ip_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join("ip")).find(|p| p.is_file())
}

/// `ip`'s path when namespaces can be made here, or why not.
pub fn available() -> Result<PathBuf, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("network namespaces need root (this run is not root)".into());
    }
    ip_binary().ok_or_else(|| "no `ip` command (iproute2) found".to_string())
}

fn run(ip: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(ip).args(args).output().map_err(|e| format!("{} {}: {e}", ip.display(), args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `/proc/sys/...` of a dotted key.
pub fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// A value with its whitespace normalised (`4096\t87380` -> `4096 87380`).
pub fn normalise(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The host's value of `key` (this process's namespace), if it exists.
pub fn host_value(key: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(key)).ok().map(|v| normalise(&v))
}

/// Two namespaces joined by a veth pair; deleted on drop.
#[derive(Debug)]
pub struct NsPair {
    ip: PathBuf,
    pub server: String,
    pub client: String,
    pub server_ip: Ipv4Addr,
    pub client_ips: Vec<Ipv4Addr>,
}

impl NsPair {
    /// Make the pair with `client_addrs` (1 to 250) addresses on the client's end.
    pub fn create(ip: &Path, client_addrs: usize) -> Result<NsPair, String> {
        let (pid, n) = (std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        let base = format!("{PREFIX}{pid}-{n}");
        let [a, b, c] = SUBNET;
        let mut pair = NsPair {
            ip: ip.to_path_buf(),
            server: format!("{base}-s"),
            client: format!("{base}-c"),
            server_ip: Ipv4Addr::new(a, b, c, 1),
            client_ips: (0..client_addrs.clamp(1, 250)).map(|i| Ipv4Addr::new(a, b, c, 2 + i as u8)).collect(),
        };
        run(ip, &["netns", "add", &pair.server])?;
        if let Err(e) = run(ip, &["netns", "add", &pair.client]) {
            pair.client.clear();
            return Err(e);
        }
        // Interface names: at most 15 bytes, made inside the namespaces directly.
        let (vs, vc) = (format!("ck{pid}x{n}s"), format!("ck{pid}x{n}c"));
        let (s, cl) = (pair.server.clone(), pair.client.clone());
        let server_cidr = format!("{}/24", pair.server_ip);
        run(ip, &["link", "add", &vs, "netns", &s, "type", "veth", "peer", "name", &vc, "netns", &cl])?;
        run(ip, &["-n", &s, "addr", "add", &server_cidr, "dev", &vs])?;
        for addr in &pair.client_ips {
            run(ip, &["-n", &cl, "addr", "add", &format!("{addr}/24"), "dev", &vc])?;
        }
        for (ns, dev) in [(&s, &vs), (&cl, &vc)] {
            run(ip, &["-n", ns, "link", "set", dev, "up"])?;
            run(ip, &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    pub fn ip(&self) -> &Path {
        &self.ip
    }

    /// Run `args` inside namespace `ns`; its stdout.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        run(&self.ip, &all)
    }

    /// `key` as namespace `ns` sees it; `None` when it does not exist there.
    pub fn sysctl_read(&self, ns: &str, key: &str) -> Option<String> {
        self.exec(ns, &["cat", &sysctl_path(key).display().to_string()]).ok().map(|v| normalise(&v))
    }

    /// `ip netns exec NS sysctl -w key=value`, for a per-namespace `net.*` key only.
    pub fn sysctl_write(&self, ns: &str, key: &str, value: &str) -> Result<(), String> {
        if !key.starts_with("net.") {
            return Err(format!("{key} is not a network setting: it is not per namespace and is never written"));
        }
        if self.sysctl_read(ns, key).is_none() {
            return Err(format!("{key} does not exist inside the namespace: it is not per namespace"));
        }
        self.exec(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")])?;
        // sysctl may exit 0 on a refused write: read the value back.
        match self.sysctl_read(ns, key) {
            Some(v) if v == normalise(value) => Ok(()),
            other => Err(format!(
                "{key} did not take inside the namespace (reads {}): the kernel lets only the initial namespace change it",
                other.unwrap_or_else(|| "nothing".into())
            )),
        }
    }

    /// Both namespaces' names.
    pub fn names(&self) -> [&str; 2] {
        [&self.server, &self.client]
    }
}

impl Drop for NsPair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            if ns.is_empty() {
                continue;
            }
            if let Err(e) = run(&self.ip, &["netns", "del", ns]) {
                eprintln!("warning: cannot delete network namespace {ns}: {e}");
            }
        }
    }
}

/// The runner pid in a name this module made (`c10k-<pid>-<n>-s`).
pub fn owner(name: &str) -> Option<i32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Delete namespaces left by runners that no longer exist; how many.
pub fn clean_leftovers() -> usize {
    let Some(ip) = ip_binary() else { return 0 };
    let Ok(list) = run(&ip, &["netns", "list"]) else { return 0 };
    let mut removed = 0;
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = owner(name) else { continue };
        let alive = pid == std::process::id() as i32 || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && run(&ip, &["netns", "del", name]).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(owner("c10k-4242-3-s"), Some(4242));
        assert_eq!(owner("other-1-s"), None);
        assert_eq!(sysctl_path("net.ipv4.tcp_rmem"), Path::new("/proc/sys/net/ipv4/tcp_rmem"));
        assert_eq!(normalise("4096\t87380   16777216\n"), "4096 87380 16777216");
    }

    /// Root only: a pair is made, a per-namespace value is written inside it and the
    /// host's stays, a machine-wide key is refused, and both namespaces are gone after the drop.
    #[test]
    fn a_pair_changes_nothing_on_the_host_and_is_removed() {
        let ip = match available() {
            Ok(ip) => ip,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        };
        let host = host_value("net.core.somaxconn").expect("host somaxconn");
        let pair = match NsPair::create(&ip, 2) {
            Ok(p) => p,
            Err(why) => {
                eprintln!("skipped: cannot make namespaces here ({why})");
                return;
            }
        };
        let other = if host == "1234" { "1235" } else { "1234" };
        pair.sysctl_write(&pair.server, "net.core.somaxconn", other).expect("per-namespace write");
        assert_eq!(pair.sysctl_read(&pair.server, "net.core.somaxconn").as_deref(), Some(other));
        assert_eq!(host_value("net.core.somaxconn").as_deref(), Some(host.as_str()), "the host's value is unchanged");
        assert!(pair.sysctl_write(&pair.server, "fs.file-max", "1048576").is_err(), "fs.* is never written");
        let rmem = host_value("net.core.rmem_max").unwrap_or_default();
        if pair.sysctl_write(&pair.server, "net.core.rmem_max", "16777216").is_err() {
            // Visible but read-only in a namespace on this kernel: refused, and seen to be refused.
            assert_eq!(host_value("net.core.rmem_max").unwrap_or_default(), rmem);
        }
        assert!(pair.sysctl_read(&pair.server, "net.core.netdev_max_backlog").is_none(), "machine-wide: absent inside");
        let ping = pair.exec(&pair.client, &["cat", "/proc/net/sockstat"]);
        assert!(ping.is_ok(), "{ping:?}");
        let names = [pair.server.clone(), pair.client.clone()];
        drop(pair);
        let list = run(&ip, &["netns", "list"]).unwrap_or_default();
        assert!(names.iter().all(|n| !list.contains(n.as_str())), "removed: {list}");
    }

    #[test]
    fn leftovers_of_a_dead_runner_are_removed() {
        let Ok(ip) = available() else {
            eprintln!("skipped: not root or no ip");
            return;
        };
        // pid_max is at most 2^22: no process has this pid.
        let name = format!("{PREFIX}4999999-0-s");
        if run(&ip, &["netns", "add", &name]).is_err() {
            eprintln!("skipped: cannot make namespaces here");
            return;
        }
        assert!(clean_leftovers() >= 1);
        assert!(!run(&ip, &["netns", "list"]).unwrap_or_default().contains(&name));
    }
}
