//! `c10k load`'s arguments and their validation into a [`Config`]; the run
//! itself, with its outputs, is [`crate::command`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::Proto;

use crate::config::{Config, Settings};
use crate::error::LoadError;
use crate::schedule::{Arrivals, DEFAULT_SEED};
use crate::settings::IoEngine;
use crate::target::HttpRequest;

/// Drive a server with many connections and record latency.
#[derive(clap::Args, Clone, Debug)]
#[command(about = "Drive a server with many connections, closed or open loop, and record latency")]
pub struct LoadArgs {
    /// The target, wrk style: http://HOST[:PORT][/path][?query] (the path and
    /// query go in the request line, HOST[:PORT] in `Host`).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Server address, HOST:PORT, instead of a URL (an `http://` prefix and a
    /// path are accepted too).
    #[arg(long, short = 'a')]
    pub addr: Option<String>,
    /// HTTP method of every request.
    #[arg(long, short = 'm', default_value = "GET")]
    pub method: String,
    /// A request header, 'Name: value' (repeatable); a `Host` given here replaces the default.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body (Content-Length is set).
    #[arg(long, value_name = "STRING", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from FILE (Content-Length is set).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Protocol spoken on every connection. `chat`: every connection is a member
    /// of a chat room; --senders of them broadcast at --rate messages/s in
    /// total, and every member must receive every message (see `--senders`).
    #[arg(long, value_enum, default_value_t = Proto::Http)]
    pub proto: Proto,
    /// Chat: members that send, spread evenly over the members, at --rate in
    /// total (required with chat) [default: 10, or --conns if fewer].
    #[arg(long, value_name = "M")]
    pub senders: Option<u64>,
    /// Concurrent connections carrying the load (over all processes), or a
    /// ramp FROM:TO:STEP (e.g. 1000:20000:1000) with --until-p99 or
    /// --until-error-rate: one --step long run at each count, up to the last
    /// count within the bound.
    #[arg(long, short = 'c', default_value = "100", value_parser = Conns::parse)]
    pub conns: Conns,
    /// Ramp: the measured window of each step.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "D")]
    pub step: Option<Duration>,
    /// Ramp: a step whose corrected p99 is above this is past the bound.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "D")]
    pub until_p99: Option<Duration>,
    /// Ramp: a step whose error rate is above this is past the bound.
    #[arg(long, value_name = "F")]
    pub until_error_rate: Option<f64>,
    /// Connections opened and held without ever sending, beside --conns: what
    /// idle clients cost the server while the others load it. The load starts
    /// once they are all established.
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub idle_conns: u64,
    /// Of --conns, M connections that send one request, read its answer and then
    /// fall silent, connected, until the server closes them (a server's idle
    /// timeout at work); the report counts them in `connections.closed_by_server`.
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub silent_conns: u64,
    /// Event-loop threads per process [default: the cores, divided by --procs].
    #[arg(long, short = 't')]
    pub threads: Option<u32>,
    /// I/O back end of the event loops: `mio` (epoll; a write and a read system
    /// call per request) or `uring` (io_uring; the sends and receives of a loop
    /// turn in one system call, a multishot receive per connection into
    /// provided buffers). Both measure the same way and differ only in their
    /// system calls; `uring` is refused, with the reason, where the kernel
    /// cannot run it.
    #[arg(long, value_enum, default_value_t = IoEngine::Mio)]
    pub engine: IoEngine,
    /// Length of the measured window, e.g. 10s, 1m [default: 10s, or until --requests are done].
    #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after exactly this many measured requests in total (answered, or failed
    /// and counted as errors), spread evenly over the connections.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Run this long before the measured window; excluded from every figure.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: u32,
    /// Open loop: total requests per second on a fixed schedule; latency is measured
    /// from each request's scheduled time (coordinated-omission corrected).
    #[arg(long, short = 'R')]
    pub rate: Option<f64>,
    /// Open loop: `uniform` (fixed gaps, wrk2) or `poisson` (exponential gaps
    /// from a seeded generator, what open-loop studies assume).
    #[arg(long, value_enum, default_value_t = Arrivals::Uniform)]
    pub arrivals: Arrivals,
    /// Poisson arrivals: seed of the generators, recorded in the report [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Open loop: sleep until this long before each send and spin the rest, or
    /// `busy` to never sleep (a core per thread, for the tightest schedule; idle
    /// spinning is reported apart and left out of the utilisation) [default: 100us].
    #[arg(long, value_parser = crate::config::Spin::parse, value_name = "DURATION|busy")]
    pub spin: Option<crate::config::Spin>,
    /// Close and reopen each connection after this many answers (1 = a connection per request).
    #[arg(long)]
    pub reqs_per_conn: Option<u64>,
    /// A request unanswered this long is an error (its connection is reopened).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub timeout: Duration,
    /// A connect not completed this long is an error.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// Ramp: open this many connections per second, loading those already open
    /// meanwhile [default: open all connections as fast as the server accepts
    /// them, then start the load].
    #[arg(long)]
    pub connect_rate: Option<f64>,
    /// Connects in progress at once, per process (SYNs the server has not answered yet).
    #[arg(long, default_value_t = 1024)]
    pub connect_window: u32,
    /// Echo: bytes per request (every answer is checked byte for byte). Chat:
    /// bytes of each message's content (64..=4032).
    #[arg(long, default_value_t = 64)]
    pub msg_size: usize,
    /// Source addresses to spread the connections over: ranges and lists, e.g.
    /// `127.0.0.1-127.0.0.4` or `10.0.0.1,10.0.0.2` [default: loopback targets
    /// get as many 127.0.0.x as the ephemeral port range needs].
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Drive shard I (0-based, like Kubernetes' JOB_COMPLETION_INDEX) of N: its
    /// exact share of the connections, of --rate and of --requests, so that N
    /// shards (on N hosts) together make exactly the load asked for.
    #[arg(long, value_name = "I/N", value_parser = crate::config::ShardOf::parse)]
    pub shard: Option<crate::config::ShardOf>,
    /// Start the measured window at this wall-clock time, Unix milliseconds
    /// (e.g. `$(( $(date +%s%3N) + 30000 ))`): shards on several hosts share one
    /// window. Connections open before; the load starts --warmup earlier.
    #[arg(long, value_name = "UNIX_MS")]
    pub start_at: Option<u64>,
    /// Spread the connections over this many load generator processes.
    #[arg(long, default_value_t = 1)]
    pub procs: u32,
    /// Exit with status 1 when errors / (answers + errors) exceeds this.
    #[arg(long, default_value_t = 0.0)]
    pub max_error_rate: f64,
    /// Write the report as JSON to FILE (`-` for stdout, the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the latency percentile distribution (HdrHistogram text, ms) to FILE;
    /// in open loop the uncorrected one goes to FILE.uncorrected.hgrm.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write HdrHistogram interval logs to FILE (`-`: stdout, the summary then
    /// goes to stderr): one line per second per tag (corrected, uncorrected,
    /// first_byte, connect), V2 compressed, what HdrHistogram's tools read and
    /// `c10k merge` adds up exactly.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// No summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Internal: run as a child of `--procs`, spec on stdin, result on stdout.
    #[arg(long, hide = true)]
    pub internal_child: bool,
}

/// `--conns`: a count, or a ramp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conns {
    Fixed(u64),
    Ramp { from: u64, to: u64, step: u64 },
}

impl Conns {
    /// `N` or `FROM:TO:STEP` (`1 <= FROM <= TO`, `STEP >= 1`).
    pub fn parse(text: &str) -> Result<Conns, String> {
        let num = |t: &str| t.trim().parse::<u64>().map_err(|_| format!("{t:?} is not a count"));
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [n] => num(n).map(Conns::Fixed),
            [from, to, step] => {
                let (from, to, step) = (num(from)?, num(to)?, num(step)?);
                if from == 0 || from > to || step == 0 {
                    return Err("a ramp is FROM:TO:STEP with 1 <= FROM <= TO and STEP >= 1".into());
                }
                Ok(Conns::Ramp { from, to, step })
            }
            _ => Err("expected a count N or a ramp FROM:TO:STEP (e.g. 1000:20000:1000)".into()),
        }
    }

    /// The counts of the steps.
    pub fn steps(self) -> Vec<u64> {
        match self {
            Conns::Fixed(n) => vec![n],
            Conns::Ramp { from, to, step } => (from..=to).step_by(step as usize).collect(),
        }
    }
}

fn invalid(msg: impl Into<String>) -> LoadError {
    LoadError::Invalid(msg.into())
}

/// Validate the arguments into a [`Config`].
pub fn config_from_args(args: &LoadArgs) -> Result<Config, LoadError> {
    let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(invalid(msg)) };
    let given = match (&args.url, &args.addr) {
        (Some(_), Some(_)) => return Err(invalid("give the target once: a URL or --addr, not both")),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(invalid("no target: give a URL (http://HOST:PORT/path) or --addr HOST:PORT")),
    };
    let target = crate::target::parse_target(given)?;
    let headers = args.headers.iter().map(|h| crate::target::parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    let request = HttpRequest {
        method: crate::target::parse_method(&args.method)?,
        path: target.path.clone(),
        headers,
        body: crate::target::read_body(args.body.as_deref(), args.body_file.as_deref())?,
    };
    check(
        args.proto == Proto::Http || request == HttpRequest { path: request.path.clone(), ..HttpRequest::default() },
        "-m, -H, --body and --body-file are HTTP options; --proto echo sends --msg-size bytes",
    )?;
    check(args.proto == Proto::Http || target.path == "/", "a URL path needs --proto http")?;
    let addr = resolve(&target.authority)?;
    let host = target.host_header;
    let Conns::Fixed(conns) = args.conns else {
        return Err(invalid("--conns FROM:TO:STEP is a ramp: run it with c10k load (crate::ramp::run)"));
    };
    check(
        args.step.is_none() && args.until_p99.is_none() && args.until_error_rate.is_none(),
        "--step, --until-p99 and --until-error-rate need a ramp: --conns FROM:TO:STEP",
    )?;
    check(conns >= 1, "--conns must be at least 1")?;
    check(args.senders.is_none(), "--senders applies to --proto chat")?;
    let slots = conns.saturating_add(args.idle_conns);
    if let Some(s) = args.shard {
        check(u64::from(s.count) <= slots, "--shard I/N: N must not exceed the connections (a shard would get none)")?;
    }
    let driven = match args.shard {
        Some(s) => crate::config::Share { first: 0, count: slots }.split(s.count)[s.index as usize].count,
        None => slots,
    };
    check(args.procs >= 1 && u64::from(args.procs) <= driven, "--procs must be between 1 and the connections")?;
    check(
        [&args.json, &args.hlog].iter().filter(|p| p.as_deref() == Some(Path::new("-"))).count() <= 1,
        "only one of --json and --hlog can go to stdout (-)",
    )?;
    check(args.pipeline >= 1 && args.pipeline <= 1024, "--pipeline must be between 1 and 1024")?;
    check(args.rate.is_none_or(|r| r.is_finite() && r > 0.0), "--rate must be a positive number")?;
    check(args.connect_rate.is_none_or(|r| r.is_finite() && r > 0.0), "--connect-rate must be a positive number")?;
    check(args.rate.is_some() || args.arrivals == Arrivals::Uniform, "--arrivals poisson needs --rate")?;
    check(args.seed.is_none() || args.arrivals == Arrivals::Poisson, "--seed needs --arrivals poisson")?;
    check(args.spin.is_none() || args.rate.is_some(), "--spin needs --rate (closed loop never waits for a schedule)")?;
    check(args.requests != Some(0), "--requests must be at least 1")?;
    check(args.silent_conns <= conns, "--silent-conns must be at most --conns")?;
    check(
        args.silent_conns == 0 || (args.requests.is_none() && args.reqs_per_conn.is_none()),
        "--silent-conns needs a --duration run without --reqs-per-conn (silent connections send one request)",
    )?;
    check(args.reqs_per_conn != Some(0), "--reqs-per-conn must be at least 1")?;
    check(!args.timeout.is_zero() && !args.connect_timeout.is_zero(), "timeouts must be positive")?;
    check(args.duration.is_none_or(|d| !d.is_zero()), "--duration must be positive")?;
    check(args.threads != Some(0), "--threads must be at least 1")?;
    check(args.connect_window >= 1, "--connect-window must be at least 1")?;
    check((0.0..=1.0).contains(&args.max_error_rate), "--max-error-rate must be between 0 and 1")?;
    check(args.proto != Proto::Echo || (1..=1 << 20).contains(&args.msg_size), "--msg-size must be 1..=1048576")?;
    let per_proc = driven.div_ceil(u64::from(args.procs));
    let threads = args.threads.unwrap_or_else(|| (crate::env::cores() / args.procs).max(1));
    let threads = threads.min(u32::try_from(per_proc).unwrap_or(u32::MAX)).max(1);
    let source_ips = match &args.source_ips {
        Some(text) => parse_source_ips(text)?,
        None => auto_source_ips(addr, driven),
    };
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    let settings = Settings {
        addr,
        proto: args.proto,
        conns,
        idle_conns: args.idle_conns,
        silent_conns: args.silent_conns,
        threads,
        procs: args.procs,
        pipeline: args.pipeline,
        rate: args.rate,
        duration,
        requests: args.requests,
        reqs_per_conn: args.reqs_per_conn,
        warmup: args.warmup,
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        connect_rate: args.connect_rate,
        source_ips,
        max_error_rate: args.max_error_rate,
        start_at_unix_ms: args.start_at,
        engine: args.engine,
    };
    Ok(Config {
        settings,
        host,
        connect_window: args.connect_window,
        msg_size: args.msg_size,
        request,
        arrivals: args.arrivals,
        seed: args.seed.unwrap_or(DEFAULT_SEED),
        spin: args.spin.unwrap_or_default(),
        shard: args.shard,
        intervals: args.hlog.is_some(),
    })
}

fn resolve(host: &str) -> Result<SocketAddr, LoadError> {
    let addrs: Vec<SocketAddr> =
        host.to_socket_addrs().map_err(|source| LoadError::Resolve { addr: host.to_string(), source })?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| LoadError::NoAddress { addr: host.to_string() })
}

/// `127.0.0.1-127.0.0.4,10.0.0.9`: IPv4 ranges and single addresses (v4 or v6).
pub fn parse_source_ips(text: &str) -> Result<Vec<IpAddr>, LoadError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || invalid(format!("--source-ips: cannot parse {part:?}"));
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a >= 1 << 16 {
                return Err(invalid(format!("--source-ips: bad range {part:?}")));
            }
            out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    if out.is_empty() {
        return Err(invalid("--source-ips lists no address"));
    }
    Ok(out)
}

/// Loopback targets with more connections than 40% of one source address's
/// ephemeral ports get 127.0.0.1..=127.0.0.K. Not 100%: the kernel looks for a
/// free port by scanning (even ports first), and once about half the range is
/// taken every connect spends milliseconds of system time in that scan.
pub fn auto_source_ips(addr: SocketAddr, conns: u64) -> Vec<IpAddr> {
    let IpAddr::V4(target) = addr.ip() else { return Vec::new() };
    if !target.is_loopback() {
        return Vec::new();
    }
    let Some([lo, hi]) = crate::env::ephemeral_ports() else { return Vec::new() };
    let per_ip = (u64::from(hi.saturating_sub(lo)) + 1) * 2 / 5;
    let k = conns.div_ceil(per_ip.max(1));
    if k <= 1 {
        return Vec::new();
    }
    (1..=k.min(250)).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn config(args: &[&str]) -> Result<Config, LoadError> {
        let mut all = vec!["load"];
        all.extend_from_slice(args);
        config_from_args(&Cli::try_parse_from(all).expect("parses").load)
    }

    #[test]
    fn defaults_and_validation() {
        let c = config(&["--addr", "http://127.0.0.1:8080/"]).unwrap();
        assert_eq!(c.host, "127.0.0.1:8080");
        assert_eq!(c.settings.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.settings.conns, 100);
        assert!(c.settings.source_ips.is_empty());
        let c = config(&["--addr", "127.0.0.1:1", "--requests", "10"]).unwrap();
        assert_eq!(c.settings.duration, None);
        let err = config(&["--addr", "127.0.0.1:1", "--pipeline", "0"]).unwrap_err();
        assert!(err.to_string().contains("--pipeline"), "{err}");
        assert!(config(&["--addr", "127.0.0.1:1", "--rate=-3"]).is_err());
        assert!(config(&["--addr", "no-such-host.invalid:1"]).is_err());
    }

    #[test]
    fn urls_methods_headers_and_bodies() {
        let c = config(&["http://127.0.0.1:8080/api?x=1", "-m", "POST", "-H", "X-A: 1", "--body", "hi"]).unwrap();
        assert_eq!((c.host.as_str(), c.settings.addr.port()), ("127.0.0.1:8080", 8080));
        assert_eq!(
            c.request_bytes(),
            b"POST /api?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert_eq!(c.echo().headers, vec!["X-A: 1"]);
        assert_eq!(c.echo().body_bytes, Some(2));
        assert_eq!(
            config(&["--addr", "127.0.0.1:1"]).unwrap().request_bytes(),
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
        );
        for (args, why) in [
            (&["http://127.0.0.1:1/", "--addr", "127.0.0.1:1"][..], "give the target once"),
            (&[][..], "no target"),
            (&["http://127.0.0.1:1/", "-H", "oops"][..], "has no colon"),
            (&["http://127.0.0.1:1/", "--body-file", "/no/such/body"][..], "cannot read it"),
            (&["https://127.0.0.1:1/"][..], "https"),
            (&["127.0.0.1:1", "--proto", "echo", "-m", "POST"][..], "HTTP options"),
        ] {
            let err = config(args).unwrap_err().to_string();
            assert!(err.contains(why), "{args:?}: {err}");
        }
    }

    #[test]
    fn spin_is_a_duration_or_busy_and_needs_a_rate() {
        use crate::config::Spin;
        let c = config(&["--addr", "127.0.0.1:1", "--rate", "100"]).unwrap();
        assert_eq!(c.spin, Spin::DEFAULT);
        assert_eq!(c.echo().spin.as_deref(), Some("100us"));
        let c = config(&["--addr", "127.0.0.1:1", "--rate", "100", "--spin", "2ms"]).unwrap();
        assert_eq!((c.spin, c.spin.ns()), (Spin::Before(Duration::from_millis(2)), 2_000_000));
        let c = config(&["--addr", "127.0.0.1:1", "--rate", "100", "--spin", "busy"]).unwrap();
        assert_eq!((c.spin.ns(), c.echo().spin.as_deref()), (u64::MAX, Some("busy")));
        let err = config(&["--addr", "127.0.0.1:1", "--spin", "busy"]).unwrap_err();
        assert!(err.to_string().contains("--spin needs --rate"), "{err}");
        assert_eq!(config(&["--addr", "127.0.0.1:1"]).unwrap().echo().spin, None, "closed loop records none");
        let mut all = vec!["load", "--addr", "127.0.0.1:1", "--rate", "1", "--spin", "soon"];
        assert!(Cli::try_parse_from(all.drain(..)).is_err(), "neither a duration nor busy");
    }

    #[test]
    fn silent_conns_are_some_of_the_conns_in_a_timed_run() {
        let c = config(&["--addr", "127.0.0.1:1", "--conns", "10", "--silent-conns", "3"]).unwrap();
        assert_eq!((c.settings.silent_conns, c.echo().settings.silent_conns), (3, 3));
        for bad in [
            &["--silent-conns", "11"][..],
            &["--silent-conns", "1", "--requests", "100"][..],
            &["--silent-conns", "1", "--reqs-per-conn", "1"][..],
        ] {
            let mut args = vec!["--addr", "127.0.0.1:1", "--conns", "10"];
            args.extend_from_slice(bad);
            assert!(config(&args).unwrap_err().to_string().contains("--silent-conns"), "{bad:?}");
        }
    }

    #[test]
    fn source_ips_parse_and_spread() {
        let ips = parse_source_ips("127.0.0.1-127.0.0.3, ::1").unwrap();
        assert_eq!(ips.len(), 4);
        assert!(parse_source_ips("127.0.0.3-127.0.0.1").is_err());
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(auto_source_ips(addr, 10_000).is_empty());
        let many = auto_source_ips(addr, 30_000);
        assert!(many.len() >= 3, "{many:?}");
        assert_eq!(many[0], IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
