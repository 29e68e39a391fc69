//! The HTTP `Date` header value, cached per thread and refreshed once a second.
//!
//! Formatting a date per request would cost more than the rest of the answer;
//! a per-thread cache needs no lock and no shared cache line.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

struct Cached {
    second: u64,
    text: [u8; DATE_LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [b' '; DATE_LEN] }) };
}

/// Call `f` with the current date in IMF-fixdate form.
pub fn with_date<R>(f: impl FnOnce(&[u8; DATE_LEN]) -> R) -> R {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let text = httpdate::fmt_http_date(now);
            // fmt_http_date always yields the 29-byte IMF-fixdate.
            if text.len() == DATE_LEN {
                cache.text.copy_from_slice(text.as_bytes());
            }
            cache.second = second;
        }
        f(&cache.text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_parses_back() {
        let text = with_date(|d| String::from_utf8(d.to_vec()).unwrap());
        let parsed = httpdate::parse_http_date(&text).expect("valid http date");
        let age = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(age.as_secs() <= 2, "date {text} is stale");
    }
}
