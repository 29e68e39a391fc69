//! Server-side HTTP/1.1: framing requests out of a byte stream, and the answers.
//!
//! `GET /` and `HEAD /` answer `200 Hello, World!`; any other path `404`; any
//! other method on `/` `405`. Keep-alive is the default for HTTP/1.1 and opt-in
//! (`Connection: keep-alive`) for HTTP/1.0. A malformed request gets `400`, a
//! head over [`MAX_HEAD`](crate::MAX_HEAD) bytes `431`, a body over
//! [`MAX_BODY`](crate::MAX_BODY) `413`, a `Transfer-Encoding` `501`; all four
//! close the connection after the answer.

use crate::{date, Proto, MAX_BODY, MAX_HEAD};

/// Headers parsed per request; more is answered `431`.
const MAX_HEADERS: usize = 32;

/// The body every `GET /` gets.
pub const HELLO_BODY: &[u8] = b"Hello, World!";

/// What a framed request is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Echo protocol: the framed bytes themselves.
    Echo,
    /// `200 OK`, `Hello, World!`.
    Hello,
    /// `404 Not Found`.
    NotFound,
    /// `405 Method Not Allowed` (only GET and HEAD exist).
    MethodNotAllowed,
    /// `400 Bad Request`, then close.
    BadRequest,
    /// `413 Content Too Large`, then close.
    PayloadTooLarge,
    /// `431 Request Header Fields Too Large`, then close.
    HeadersTooLarge,
    /// `501 Not Implemented` (`Transfer-Encoding`), then close.
    NotImplemented,
}

impl Reply {
    /// Every HTTP reply (all but [`Reply::Echo`]), for checks over each answer.
    pub const HTTP: [Reply; 7] = [
        Reply::Hello,
        Reply::NotFound,
        Reply::MethodNotAllowed,
        Reply::BadRequest,
        Reply::PayloadTooLarge,
        Reply::HeadersTooLarge,
        Reply::NotImplemented,
    ];

    /// The status code, or `None` for echo.
    pub fn status(self) -> Option<u16> {
        Some(match self {
            Reply::Echo => return None,
            Reply::Hello => 200,
            Reply::NotFound => 404,
            Reply::MethodNotAllowed => 405,
            Reply::BadRequest => 400,
            Reply::PayloadTooLarge => 413,
            Reply::HeadersTooLarge => 431,
            Reply::NotImplemented => 501,
        })
    }

    /// A request the application handles (and so does the simulated work for),
    /// as opposed to a protocol error answered by the framing layer.
    pub fn is_handled(self) -> bool {
        matches!(self, Reply::Echo | Reply::Hello | Reply::NotFound | Reply::MethodNotAllowed)
    }

    /// Status line, extra header lines, and body.
    fn parts(self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self {
            Reply::Echo => (b"", b"", b""),
            Reply::Hello => (b"HTTP/1.1 200 OK\r\n", b"", HELLO_BODY),
            Reply::NotFound => (b"HTTP/1.1 404 Not Found\r\n", b"", b"Not Found\n"),
            Reply::MethodNotAllowed => {
                (b"HTTP/1.1 405 Method Not Allowed\r\n", b"Allow: GET, HEAD\r\n", b"Method Not Allowed\n")
            }
            Reply::BadRequest => (b"HTTP/1.1 400 Bad Request\r\n", b"", b"Bad Request\n"),
            Reply::PayloadTooLarge => (b"HTTP/1.1 413 Content Too Large\r\n", b"", b"Content Too Large\n"),
            Reply::HeadersTooLarge => {
                (b"HTTP/1.1 431 Request Header Fields Too Large\r\n", b"", b"Request Header Fields Too Large\n")
            }
            Reply::NotImplemented => (b"HTTP/1.1 501 Not Implemented\r\n", b"", b"Not Implemented\n"),
        }
    }
}

/// One request framed out of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub reply: Reply,
    /// `HEAD`: headers only.
    pub head: bool,
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// HTTP/1.0 (so keep-alive must be said explicitly in the answer).
    pub http10: bool,
}

impl Request {
    fn closing(reply: Reply) -> Self {
        Request { reply, head: false, keep_alive: false, http10: false }
    }
}

/// The result of looking for a request at the front of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole request of `len` bytes (head and body).
    Complete { len: usize, request: Request },
    /// Not enough bytes yet: the request's head (request line and headers)
    /// is not complete.
    Partial,
    /// The head is complete, its body (`Content-Length`) is not yet: what a
    /// header timeout no longer covers.
    PartialBody,
}

/// Frame the request at the front of `input` under `proto`.
pub fn frame(proto: Proto, input: &[u8]) -> Frame {
    match proto {
        Proto::Echo if input.is_empty() => Frame::Partial,
        Proto::Echo => Frame::Complete {
            len: input.len(),
            request: Request { reply: Reply::Echo, head: false, keep_alive: true, http10: false },
        },
        Proto::Http => frame_http(input),
        // Chat frames lines, not requests (`crate::chat`): a session never asks.
        Proto::Chat => Frame::Partial,
    }
}

fn frame_http(input: &[u8]) -> Frame {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    // Parse no further than MAX_HEAD bytes: a head that does not end within
    // them is 431 whatever follows, so the answer cannot depend on how the
    // bytes were split into reads (parsing all of them answered 400 for a
    // syntax error past MAX_HEAD when it arrived in one read, 431 otherwise).
    let window = &input[..input.len().min(MAX_HEAD)];
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => return error(Reply::HeadersTooLarge, input),
        Ok(httparse::Status::Partial) => return Frame::Partial,
        Err(httparse::Error::TooManyHeaders) => return error(Reply::HeadersTooLarge, input),
        Err(_) => return error(Reply::BadRequest, input),
    };
    let http10 = req.version == Some(0);
    let mut keep_alive = !http10;
    let mut content_length: Option<usize> = None;
    let mut has_host = false;
    for header in req.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let Some(len) = parse_decimal(header.value) else {
                return error(Reply::BadRequest, input);
            };
            if content_length.is_some_and(|prev| prev != len) {
                return error(Reply::BadRequest, input);
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return error(Reply::NotImplemented, input);
        } else if name.eq_ignore_ascii_case("host") {
            has_host = true;
        }
    }
    if !http10 && !has_host {
        return error(Reply::BadRequest, input);
    }
    let body = content_length.unwrap_or(0);
    if body > MAX_BODY {
        return error(Reply::PayloadTooLarge, input);
    }
    let len = head_len + body;
    if input.len() < len {
        return Frame::PartialBody;
    }
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let head = method == "HEAD";
    let reply = match (method, path) {
        ("GET" | "HEAD", "/") => Reply::Hello,
        (_, "/") => Reply::MethodNotAllowed,
        _ => Reply::NotFound,
    };
    Frame::Complete { len, request: Request { reply, head, keep_alive, http10 } }
}

/// A protocol error consumes everything buffered: the connection closes after the answer.
fn error(reply: Reply, input: &[u8]) -> Frame {
    Frame::Complete { len: input.len(), request: Request::closing(reply) }
}

fn parse_decimal(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0')))
}

/// Append the answer to `request` to `out`. `frame` is the request's own bytes
/// (what echo writes back).
pub fn answer(request: &Request, frame: &[u8], out: &mut Vec<u8>) {
    if request.reply == Reply::Echo {
        out.extend_from_slice(frame);
        return;
    }
    let (status, extra, body) = request.reply.parts();
    out.extend_from_slice(status);
    out.extend_from_slice(b"Server: c10k\r\nDate: ");
    date::with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(extra);
    if !request.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if request.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !request.head {
        out.extend_from_slice(body);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(input: &[u8]) -> (usize, Request) {
        match frame(Proto::Http, input) {
            Frame::Complete { len, request } => (len, request),
            partial => panic!("{partial:?}: {:?}", String::from_utf8_lossy(input)),
        }
    }

    fn answer_text(request: &Request) -> String {
        let mut out = Vec::new();
        answer(request, b"", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn get_root_is_hello_with_all_headers() {
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (len, req) = framed(input);
        assert_eq!(len, input.len());
        assert_eq!(req.reply, Reply::Hello);
        assert!(req.keep_alive);
        let text = answer_text(&req);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\nServer: c10k\r\n"));
        assert!(text.contains("\r\nContent-Type: text/plain\r\n"));
        assert!(text.contains("\r\nContent-Length: 13\r\n"));
        assert!(text.contains("\r\nDate: "));
        assert!(!text.contains("Connection:"));
        assert!(text.ends_with("\r\n\r\nHello, World!"));
    }

    #[test]
    fn head_has_headers_only() {
        let (_, req) = framed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        let text = answer_text(&req);
        assert!(text.contains("Content-Length: 13\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn routes_and_methods() {
        assert_eq!(framed(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").1.reply, Reply::NotFound);
        assert_eq!(framed(b"GET /?q=1 HTTP/1.1\r\nHost: x\r\n\r\n").1.reply, Reply::Hello);
        let (_, req) = framed(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(req.reply, Reply::MethodNotAllowed);
        assert!(answer_text(&req).contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!framed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").1.keep_alive);
        assert!(!framed(b"GET / HTTP/1.0\r\n\r\n").1.keep_alive);
        let (_, req) = framed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(req.keep_alive);
        assert!(answer_text(&req).contains("\r\nConnection: keep-alive\r\n"));
        let (_, req) = framed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n");
        assert!(!req.keep_alive);
        assert!(answer_text(&req).contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn partial_until_complete() {
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..input.len() {
            assert_eq!(frame(Proto::Http, &input[..cut]), Frame::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn body_is_framed_by_content_length() {
        let input = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(frame(Proto::Http, &input[..45]), Frame::Partial);
        assert_eq!(frame(Proto::Http, &input[..48]), Frame::PartialBody, "head complete, body not");
        assert_eq!(frame(Proto::Http, &input[..52]), Frame::PartialBody);
        let (len, req) = framed(input);
        assert_eq!(&input[len..len + 3], b"GET");
        assert_eq!(req.reply, Reply::NotFound);
    }

    #[test]
    fn protocol_errors_close() {
        let cases: &[(&[u8], Reply)] = &[
            (b"BLAH\r\n\r\n", Reply::BadRequest),
            (b"GET / HTTP/1.1\r\n\r\n", Reply::BadRequest), // no Host
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", Reply::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Reply::BadRequest),
            (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", Reply::NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", Reply::PayloadTooLarge),
        ];
        for (input, reply) in cases {
            let (len, req) = framed(input);
            assert_eq!(req.reply, *reply, "{}", String::from_utf8_lossy(input));
            assert_eq!(len, input.len());
            assert!(!req.keep_alive);
            assert!(answer_text(&req).contains("Connection: close"));
        }
    }

    #[test]
    fn oversized_head_is_431_even_if_incomplete() {
        let mut input = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        input.resize(MAX_HEAD + 1, b'a');
        assert_eq!(framed(&input).1.reply, Reply::HeadersTooLarge);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(framed(&many).1.reply, Reply::HeadersTooLarge);
    }

    #[test]
    fn oversized_head_answer_does_not_depend_on_the_split() {
        // Regression (found by proto/tests/properties.rs): a syntax error past
        // MAX_HEAD was 400 when the head arrived whole, 431 when it arrived in
        // pieces.
        let mut input = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        input.resize(MAX_HEAD + 10, b'a');
        input.extend_from_slice(b"\r\nBad Header\r\n\r\n");
        assert_eq!(framed(&input).1.reply, Reply::HeadersTooLarge);
        assert_eq!(framed(&input[..MAX_HEAD + 1]).1.reply, Reply::HeadersTooLarge);
        // A head of exactly MAX_HEAD bytes is still accepted.
        let mut exact = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        exact.resize(MAX_HEAD - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(framed(&exact), (MAX_HEAD, framed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").1));
    }

    #[test]
    fn echo_frames_everything() {
        assert_eq!(frame(Proto::Echo, b""), Frame::Partial);
        let Frame::Complete { len, request } = frame(Proto::Echo, b"abc") else { panic!() };
        assert_eq!(len, 3);
        let mut out = Vec::new();
        answer(&request, b"abc", &mut out);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn decimal() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        push_decimal(&mut out, 1234567);
        assert_eq!(out, b"01234567");
        assert_eq!(parse_decimal(b" 42 "), Some(42));
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b""), None);
    }
}
