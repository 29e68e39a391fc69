//! What is loaded: the target (`http://HOST:PORT/path?q`, or `--addr HOST:PORT`)
//! and the HTTP request sent on every connection (`-m`, `-H`, `--body`,
//! `--body-file`).
//!
//! Everything here is checked before the first connect: a bad URL, a header
//! without a colon or an unreadable body file stops the run with a message
//! naming the flag, instead of a run that fails on every request. The request
//! bytes are built once ([`proto::client::http_request_with`]) and shared by all
//! connections; the default (`GET /`, only `Host`) is byte for byte the request
//! earlier versions sent.

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// A parsed target: where to connect and what to put in the request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port` to resolve (IPv6 literals keep their brackets).
    pub authority: String,
    /// The `Host` header: the authority as written (without a default port 80).
    pub host_header: String,
    /// Path and query, `/` when the URL has none.
    pub path: String,
}

fn invalid(msg: String) -> LoadError {
    LoadError::Invalid(msg)
}

/// Parse `http://HOST[:PORT][/path][?query]` or `HOST:PORT` (what `--addr` takes).
pub fn parse_target(text: &str) -> Result<Target, LoadError> {
    let bad = |why: &str| invalid(format!("bad URL {text:?}: {why}"));
    let (rest, scheme) = match text.split_once("://") {
        Some((scheme, rest)) => (rest, Some(scheme)),
        None => (text, None),
    };
    match scheme {
        None => {}
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err(bad("https is not supported (c10k load speaks plain HTTP/1.1)"))
        }
        Some(_) => return Err(bad("the scheme must be http://")),
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("user information (user@host) is not supported"));
    }
    if authority.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the host contains a space or control character"));
    }
    // The port: after the last colon that is not inside an IPv6 literal's brackets.
    let port_at = match authority.rfind(']') {
        Some(close) => authority[close..].find(':').map(|i| close + i),
        None => authority.rfind(':'),
    };
    let (host_part, port) = match port_at {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    };
    if host_part.is_empty() || host_part == "[]" {
        return Err(bad("no host"));
    }
    let port: u16 = match port {
        Some(p) => p.parse().ok().filter(|&p| p > 0).ok_or_else(|| bad("the port must be 1..=65535"))?,
        None if scheme.is_some() => 80,
        None => return Err(bad("no port (HOST:PORT, or an http:// URL)")),
    };
    let path_and_query = tail.split('#').next().unwrap_or_default();
    if path_and_query.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the path contains a space or control character (percent-encode it)"));
    }
    let path = match path_and_query {
        "" => "/".to_string(),
        q if q.starts_with('?') => format!("/{q}"),
        p => p.to_string(),
    };
    Ok(Target { authority: format!("{host_part}:{port}"), host_header: authority.to_string(), path })
}

/// The request every connection sends (HTTP only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET` unless `-m`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `-H` headers in the order given.
    pub headers: Vec<(String, String)>,
    /// `--body` or `--body-file`; `Content-Length` is set when present.
    pub body: Option<Vec<u8>>,
}

impl Default for HttpRequest {
    /// `GET /` with no header but `Host`: what every earlier version sent.
    fn default() -> Self {
        HttpRequest { method: "GET".into(), path: "/".into(), headers: Vec::new(), body: None }
    }
}

impl HttpRequest {
    /// `HEAD`: answers carry no body whatever their `Content-Length` says.
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The bytes of one request to `host` (the `Host` header, unless `-H` names one).
    pub fn bytes(&self, host: &str) -> Vec<u8> {
        proto::client::http_request_with(&self.method, &self.path, host, &self.headers, self.body.as_deref())
    }
}

/// A token (RFC 9110): method and header names.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `-m`: a method token (`GET`, `POST`, `PURGE` ...).
pub fn parse_method(text: &str) -> Result<String, LoadError> {
    if !is_token(text) {
        return Err(invalid(format!("-m/--method {text:?} is not an HTTP method (letters, no spaces)")));
    }
    Ok(text.to_string())
}

/// `-H 'Name: value'`.
pub fn parse_header(text: &str) -> Result<(String, String), LoadError> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(invalid(format!("-H/--header {text:?} has no colon: write it as 'Name: value'")));
    };
    let (name, value) = (name.trim(), value.trim());
    if !is_token(name) {
        return Err(invalid(format!("-H/--header {text:?}: {name:?} is not a header name")));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(invalid(format!("-H/--header {text:?}: the value contains a line break")));
    }
    for (managed, why) in [
        ("content-length", "it is set from --body or --body-file"),
        ("transfer-encoding", "request bodies are sent with a Content-Length"),
    ] {
        if name.eq_ignore_ascii_case(managed) {
            return Err(invalid(format!("-H/--header {name} cannot be given: {why}")));
        }
    }
    Ok((name.to_string(), value.to_string()))
}

/// The body from `--body` or `--body-file` (at most one of them).
pub fn read_body(text: Option<&str>, file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, LoadError> {
    match (text, file) {
        (Some(_), Some(_)) => Err(invalid("give --body or --body-file, not both".into())),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(path)) => std::fs::read(path)
            .map(Some)
            .map_err(|e| invalid(format!("--body-file {}: cannot read it: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        parse_target(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn urls_and_addresses_parse() {
        let t = target("http://127.0.0.1:8080/a/b?x=1#frag");
        assert_eq!(
            (t.authority.as_str(), t.host_header.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/a/b?x=1")
        );
        let t = target("http://localhost");
        assert_eq!((t.authority.as_str(), t.host_header.as_str(), t.path.as_str()), ("localhost:80", "localhost", "/"));
        assert_eq!(target("http://h:1?q").path, "/?q");
        assert_eq!(target("127.0.0.1:9").path, "/");
        assert_eq!(target("http://127.0.0.1:8080/").host_header, "127.0.0.1:8080");
        let t = target("http://[::1]:8080/x");
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("[::1]:8080", "/x"));
        assert_eq!(target("http://[::1]/").authority, "[::1]:80");
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, why) in [
            ("https://h/", "https is not supported"),
            ("ftp://h/", "scheme"),
            ("http:///x", "no host"),
            ("http://h:0/", "port"),
            ("http://h:99999/", "port"),
            ("http://h:x/", "port"),
            ("http://u@h/", "user information"),
            ("http://h/a b", "space"),
            ("127.0.0.1", "no port"),
        ] {
            let err = parse_target(text).expect_err(text).to_string();
            assert!(err.contains(why) && err.contains("bad URL"), "{text}: {err}");
        }
    }

    #[test]
    fn headers_methods_and_bodies_are_checked() {
        assert_eq!(parse_header("X-A:  b c ").unwrap(), ("X-A".into(), "b c".into()));
        assert!(parse_header("no colon").unwrap_err().to_string().contains("has no colon"));
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("Content-Length: 3").unwrap_err().to_string().contains("--body"));
        assert!(parse_method("GET").is_ok() && parse_method("GE T").is_err());
        assert_eq!(read_body(Some("hi"), None).unwrap(), Some(b"hi".to_vec()));
        let err = read_body(None, Some(std::path::Path::new("/no/such/file"))).unwrap_err().to_string();
        assert!(err.contains("--body-file /no/such/file: cannot read it"), "{err}");
        let req = HttpRequest { method: "HEAD".into(), path: "/".into(), headers: Vec::new(), body: None };
        assert!(req.is_head());
        assert_eq!(req.bytes("h:1"), b"HEAD / HTTP/1.1\r\nHost: h:1\r\n\r\n");
    }
}
