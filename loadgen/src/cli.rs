//! `c10k load`: the arguments, their validation into a [`Config`], and the run
//! with its outputs (summary, `--json`, `--hgrm`, exit status).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use proto::Proto;

use crate::config::Config;
use crate::error::LoadError;
use crate::run::{install_stop_handler, run_config, Outcome};
use crate::schedule::{Arrivals, DEFAULT_SEED};

/// Drive a server with many connections and record latency.
#[derive(clap::Args, Clone, Debug)]
#[command(about = "Drive a server with many connections, closed or open loop, and record latency")]
pub struct LoadArgs {
    /// Server address, HOST:PORT (an `http://` prefix is accepted).
    #[arg(long, short = 'a', required_unless_present = "internal_child")]
    pub addr: Option<String>,
    /// Protocol spoken on every connection. `chat`: every connection is a member
    /// of a chat room; --senders of them broadcast at --rate messages/s in
    /// total, and every member must receive every message (see `--senders`).
    #[arg(long, value_enum, default_value_t = Proto::Http)]
    pub proto: Proto,
    /// Chat: members that send, spread evenly over the members, at --rate in
    /// total (required with chat) [default: 10, or --conns if fewer].
    #[arg(long, value_name = "M")]
    pub senders: Option<u64>,
    /// Concurrent connections carrying the load (over all processes).
    #[arg(long, short = 'c', default_value_t = 100)]
    pub conns: u64,
    /// Connections opened and held without ever sending, beside --conns: what
    /// idle clients cost the server while the others load it. The load starts
    /// once they are all established.
    #[arg(long, default_value_t = 0, value_name = "M")]
    pub idle_conns: u64,
    /// Event-loop threads per process [default: the cores, divided by --procs].
    #[arg(long, short = 't')]
    pub threads: Option<u32>,
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
    /// No summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Internal: run as a child of `--procs`, spec on stdin, result on stdout.
    #[arg(long, hide = true)]
    pub internal_child: bool,
}

/// Run `c10k load`.
pub fn run(args: LoadArgs) -> Result<ExitCode, LoadError> {
    if args.internal_child {
        return crate::procs::child_main();
    }
    if args.proto == Proto::Chat {
        return crate::chat::run(&args);
    }
    let config = config_from_args(&args)?;
    install_stop_handler();
    let outcome = run_config(&config, !args.quiet)?;
    write_outputs(&args, &outcome)?;
    let report = &outcome.report;
    if !report.passed {
        let first = report.errors.details.first();
        eprintln!(
            "c10k load: error rate {:.4}% exceeds --max-error-rate {}{}",
            report.errors.rate * 100.0,
            config.max_error_rate,
            first.map(|d| format!(": {} ({} of {} connections)", d.message, d.conns, config.conns)).unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, text: &str) -> Result<(), LoadError> {
    std::fs::write(path, text).map_err(|source| LoadError::Output { path: path.to_path_buf(), source })
}

fn write_outputs(args: &LoadArgs, outcome: &Outcome) -> Result<(), LoadError> {
    let report = &outcome.report;
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(report)? + "\n";
        if json_to_stdout {
            to_stream(&mut std::io::stdout(), &text);
        } else {
            write_file(path, &text)?;
        }
    }
    if let Some(path) = &args.hgrm {
        write_file(path, &crate::hgrm::percentile_distribution(&outcome.recorder.corrected))?;
        if report.open_loop.is_some() {
            let text = crate::hgrm::percentile_distribution(&outcome.recorder.uncorrected);
            write_file(&crate::hgrm::uncorrected_path(path), &text)?;
        }
    }
    if !args.quiet {
        let text = crate::summary::render(report);
        if json_to_stdout {
            to_stream(&mut std::io::stderr(), &text);
        } else {
            to_stream(&mut std::io::stdout(), &text);
        }
    }
    Ok(())
}

/// Write to stdout or stderr; a reader that went away (`| head`) is not an error.
fn to_stream(stream: &mut impl std::io::Write, text: &str) {
    let _ = stream.write_all(text.as_bytes()).and_then(|()| stream.flush());
}

fn invalid(msg: impl Into<String>) -> LoadError {
    LoadError::Invalid(msg.into())
}

/// Validate the arguments into a [`Config`].
pub fn config_from_args(args: &LoadArgs) -> Result<Config, LoadError> {
    let given = args.addr.as_deref().ok_or_else(|| invalid("--addr is required"))?;
    let host = given.trim_start_matches("http://").trim_end_matches('/').to_string();
    let addr = resolve(&host)?;
    let check = |ok: bool, msg: &str| if ok { Ok(()) } else { Err(invalid(msg)) };
    check(args.conns >= 1, "--conns must be at least 1")?;
    check(args.senders.is_none(), "--senders applies to --proto chat")?;
    let slots = args.conns.saturating_add(args.idle_conns);
    check(args.procs >= 1 && u64::from(args.procs) <= slots, "--procs must be between 1 and the connections")?;
    check(args.pipeline >= 1 && args.pipeline <= 1024, "--pipeline must be between 1 and 1024")?;
    check(args.rate.is_none_or(|r| r.is_finite() && r > 0.0), "--rate must be a positive number")?;
    check(args.connect_rate.is_none_or(|r| r.is_finite() && r > 0.0), "--connect-rate must be a positive number")?;
    check(args.rate.is_some() || args.arrivals == Arrivals::Uniform, "--arrivals poisson needs --rate")?;
    check(args.seed.is_none() || args.arrivals == Arrivals::Poisson, "--seed needs --arrivals poisson")?;
    check(args.spin.is_none() || args.rate.is_some(), "--spin needs --rate (closed loop never waits for a schedule)")?;
    check(args.requests != Some(0), "--requests must be at least 1")?;
    check(args.reqs_per_conn != Some(0), "--reqs-per-conn must be at least 1")?;
    check(!args.timeout.is_zero() && !args.connect_timeout.is_zero(), "timeouts must be positive")?;
    check(args.duration.is_none_or(|d| !d.is_zero()), "--duration must be positive")?;
    check(args.threads != Some(0), "--threads must be at least 1")?;
    check(args.connect_window >= 1, "--connect-window must be at least 1")?;
    check((0.0..=1.0).contains(&args.max_error_rate), "--max-error-rate must be between 0 and 1")?;
    check(args.proto != Proto::Echo || (1..=1 << 20).contains(&args.msg_size), "--msg-size must be 1..=1048576")?;
    let per_proc = slots.div_ceil(u64::from(args.procs));
    let threads = args.threads.unwrap_or_else(|| (crate::env::cores() / args.procs).max(1));
    let threads = threads.min(u32::try_from(per_proc).unwrap_or(u32::MAX)).max(1);
    let source_ips = match &args.source_ips {
        Some(text) => parse_source_ips(text)?,
        None => auto_source_ips(addr, slots),
    };
    let duration = match (args.duration, args.requests) {
        (None, None) => Some(Duration::from_secs(10)),
        (d, _) => d,
    };
    Ok(Config {
        addr,
        host,
        proto: args.proto,
        conns: args.conns,
        idle_conns: args.idle_conns,
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
        connect_window: args.connect_window,
        msg_size: args.msg_size,
        source_ips,
        max_error_rate: args.max_error_rate,
        arrivals: args.arrivals,
        seed: args.seed.unwrap_or(DEFAULT_SEED),
        spin: args.spin.unwrap_or_default(),
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
        assert_eq!(c.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.conns, 100);
        assert!(c.source_ips.is_empty());
        let c = config(&["--addr", "127.0.0.1:1", "--requests", "10"]).unwrap();
        assert_eq!(c.duration, None);
        let err = config(&["--addr", "127.0.0.1:1", "--pipeline", "0"]).unwrap_err();
        assert!(err.to_string().contains("--pipeline"), "{err}");
        assert!(config(&["--addr", "127.0.0.1:1", "--rate=-3"]).is_err());
        assert!(config(&["--addr", "no-such-host.invalid:1"]).is_err());
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
