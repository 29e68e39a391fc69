//! Numbers as the report, the progress lines and the C1M pages write them:
//! counts with thousands separators, latencies and sizes in a readable unit.
//! One definition for every module that prints a figure.

/// `12345.6` -> `12,346`.
pub fn n(x: f64) -> String {
    let v = x.round() as i64;
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Microseconds as a readable latency: `850 us`, `12.3 ms`, `2.10 s`.
pub fn lat(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

/// Bytes as MiB or KiB.
pub fn bytes(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / 1073741824.0)
    } else if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1048576.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}
