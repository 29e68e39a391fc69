//! The load generator's side of the wire: the request it sends, and framing
//! the answers it gets back, pipelined in order: the head (status, `Connection`)
//! and how its body ends (`Content-Length`, `Transfer-Encoding: chunked`, or the
//! server's close), so that a client can skip bodies as they stream in.

/// Largest answer head a client accepts before calling the answer bad.
pub const MAX_ANSWER_HEAD: usize = 16 * 1024;

const MAX_HEADERS: usize = 32;

/// The `GET /` request a load generator sends, with `Host` set to `host`.
pub fn http_request(host: &str) -> Vec<u8> {
    http_request_with("GET", "/", host, &[], None)
}

/// A request: `method path HTTP/1.1`, `Host: host` unless `headers` name their
/// own `Host`, the headers in order, and with a body its `Content-Length`.
/// Nothing is checked here: the caller validated method, path and headers.
pub fn http_request_with(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        out.push_str(&format!("Host: {host}\r\n"));
    }
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// One answer framed at the front of a client's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerFrame {
    /// A whole answer of `len` bytes with this status; `close` when the server
    /// said `Connection: close`.
    Complete { len: usize, status: u16, close: bool },
    /// Not enough bytes yet.
    Partial,
}

/// Why an answer could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("malformed HTTP answer: {0}")]
    Malformed(String),
    #[error("HTTP answer without Content-Length")]
    NoLength,
    #[error("HTTP answer head longer than {MAX_ANSWER_HEAD} bytes")]
    HeadTooLarge,
    #[error("HTTP answer with a chunked body (frame it with frame_http_head and ChunkedBody)")]
    Chunked,
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
}

/// The echo request of `size` bytes a load generator sends: a fixed pattern
/// (not all one byte, so a shifted or mixed-up echo does not match).
pub fn echo_message(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 23) as u8).collect()
}

/// How the body of an answer ends (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLen {
    /// Exactly this many bytes (`Content-Length`; 0 for `HEAD`, 1xx, 204 and 304).
    Length(usize),
    /// `Transfer-Encoding: chunked`: chunks up to the last one and the trailers.
    Chunked,
    /// Neither: the body runs until the server closes the connection.
    UntilClose,
}

/// The head of one HTTP answer framed at the front of a client's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadFrame {
    /// A whole head of `head_len` bytes; a body framed as `body` follows it.
    /// `close` when the server said `Connection: close` (or spoke HTTP/1.0, or
    /// the body ends with the connection).
    Complete { head_len: usize, body: BodyLen, status: u16, close: bool },
    /// Not enough bytes yet.
    Partial,
}

/// Frame the head of the HTTP answer at the front of `input`, without needing
/// its body: a client can skip the body as it streams in. `head_request` says
/// the request was `HEAD` (no body follows whatever `Content-Length` says).
pub fn frame_http_head(input: &[u8], head_request: bool) -> Result<HeadFrame, AnswerError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() > MAX_ANSWER_HEAD => return Err(AnswerError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(HeadFrame::Partial),
        Err(e) => return Err(AnswerError::Malformed(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = None;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when it is the last coding; any other coding ends with the connection.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value).unwrap_or("").trim();
            length = Some(text.parse::<usize>().map_err(|_| {
                AnswerError::Malformed(format!("bad Content-Length {:?}", String::from_utf8_lossy(h.value)))
            })?);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let no_body = head_request || status == 204 || status == 304 || (100..200).contains(&status);
    let body = match (chunked, length) {
        _ if no_body => BodyLen::Length(0),
        (Some(true), _) => BodyLen::Chunked,
        (Some(false), _) | (None, None) => BodyLen::UntilClose,
        (None, Some(n)) => BodyLen::Length(n),
    };
    if body == BodyLen::UntilClose {
        close = true;
    }
    Ok(HeadFrame::Complete { head_len, body, status, close })
}

/// Longest chunk-size line (with extensions) or trailer line a client accepts.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Where a [`ChunkedBody`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// In the hex size of the next chunk (`digits` read so far).
    Size {
        digits: u8,
    },
    /// In a chunk extension, up to the line's CR.
    Extension,
    /// The LF ending a size line.
    SizeLf,
    /// Data bytes still to skip.
    Data(u64),
    /// The CR, then the LF, after a chunk's data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// The LF of the final empty line.
    FinalLf,
}

/// Skips a chunked body as it streams in (sans-IO): [`ChunkedBody::skip`] takes
/// each piece of input and says how much of it the body used and whether the
/// body (last chunk and trailers) is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkedBody {
    state: Chunk,
    size: u64,
    /// Bytes of the current size or trailer line, bounded by [`MAX_CHUNK_LINE`].
    line: usize,
}

impl Default for ChunkedBody {
    fn default() -> Self {
        ChunkedBody { state: Chunk::Size { digits: 0 }, size: 0, line: 0 }
    }
}

impl ChunkedBody {
    /// Consume body bytes from the front of `input`: `(used, complete)`. When
    /// `complete`, the bytes after `used` belong to the next answer.
    pub fn skip(&mut self, input: &[u8]) -> Result<(usize, bool), AnswerError> {
        let mut pos = 0;
        while pos < input.len() {
            if let Chunk::Data(left) = self.state {
                let n = left.min((input.len() - pos) as u64);
                pos += n as usize;
                self.state = if n == left { Chunk::DataCr } else { Chunk::Data(left - n) };
                continue;
            }
            let b = input[pos];
            pos += 1;
            self.line += 1;
            if self.line > MAX_CHUNK_LINE {
                return Err(AnswerError::BadChunk("line too long"));
            }
            self.state = match (self.state, b) {
                (Chunk::Size { digits }, b) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(AnswerError::BadChunk("chunk size too large"));
                    }
                    self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    Chunk::Size { digits: digits + 1 }
                }
                (Chunk::Size { digits: 0 }, _) => return Err(AnswerError::BadChunk("no chunk size")),
                (Chunk::Size { .. }, b';' | b' ' | b'\t') | (Chunk::Extension, _) if b != b'\r' => Chunk::Extension,
                (Chunk::Size { .. } | Chunk::Extension, b'\r') => Chunk::SizeLf,
                (Chunk::SizeLf, b'\n') => {
                    self.line = 0;
                    match std::mem::take(&mut self.size) {
                        0 => Chunk::TrailerStart,
                        n => Chunk::Data(n),
                    }
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => {
                    self.line = 0;
                    Chunk::Size { digits: 0 }
                }
                (Chunk::TrailerStart, b'\r') => Chunk::FinalLf,
                (Chunk::Trailer, b'\n') => {
                    self.line = 0;
                    Chunk::TrailerStart
                }
                (Chunk::TrailerStart | Chunk::Trailer, _) => Chunk::Trailer,
                (Chunk::FinalLf, b'\n') => {
                    *self = ChunkedBody::default();
                    return Ok((pos, true));
                }
                _ => return Err(AnswerError::BadChunk("bad framing bytes")),
            };
        }
        Ok((pos, false))
    }
}

/// Frame the HTTP answer at the front of `input`. `head_request` says the
/// request was `HEAD` (no body follows whatever `Content-Length` says).
pub fn frame_http_answer(input: &[u8], head_request: bool) -> Result<AnswerFrame, AnswerError> {
    match frame_http_head(input, head_request)? {
        HeadFrame::Partial => Ok(AnswerFrame::Partial),
        HeadFrame::Complete { body: BodyLen::Chunked, .. } => Err(AnswerError::Chunked),
        HeadFrame::Complete { body: BodyLen::UntilClose, .. } => Err(AnswerError::NoLength),
        HeadFrame::Complete { head_len, body: BodyLen::Length(body_len), status, close } => {
            let len = head_len + body_len;
            if input.len() < len {
                return Ok(AnswerFrame::Partial);
            }
            Ok(AnswerFrame::Complete { len, status, close })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{answer, Reply, Request};

    fn server_answer(reply: Reply, keep_alive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        answer(&Request { reply, head: false, keep_alive, http10: false }, b"", &mut out);
        out
    }

    #[test]
    fn frames_what_the_server_writes() {
        let one = server_answer(Reply::Hello, true);
        let mut two = one.clone();
        two.extend_from_slice(&server_answer(Reply::NotFound, false));
        assert_eq!(
            frame_http_answer(&two, false).unwrap(),
            AnswerFrame::Complete { len: one.len(), status: 200, close: false }
        );
        match frame_http_answer(&two[one.len()..], false).unwrap() {
            AnswerFrame::Complete { status: 404, close: true, .. } => {}
            other => panic!("{other:?}"),
        }
        for cut in 0..one.len() {
            assert_eq!(frame_http_answer(&one[..cut], false).unwrap(), AnswerFrame::Partial);
        }
    }

    #[test]
    fn bad_answers_are_errors() {
        assert!(matches!(frame_http_answer(b"garbage\r\n\r\n", false), Err(AnswerError::Malformed(_))));
        assert_eq!(frame_http_answer(b"HTTP/1.1 200 OK\r\n\r\n", false), Err(AnswerError::NoLength));
        assert_eq!(
            frame_http_answer(b"HTTP/1.1 200 OK\r\n\r\n", true).unwrap(),
            AnswerFrame::Complete { len: 19, status: 200, close: false }
        );
    }

    #[test]
    fn request_is_what_the_server_accepts() {
        let req = http_request("127.0.0.1:80");
        match crate::http::frame(crate::Proto::Http, &req) {
            crate::http::Frame::Complete { len, request } => {
                assert_eq!(len, req.len());
                assert_eq!(request.reply, Reply::Hello);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn head_frames_without_the_body() {
        let answer = server_answer(Reply::Hello, true);
        let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(
            frame_http_head(&answer[..head_end], false).unwrap(),
            HeadFrame::Complete {
                head_len: head_end,
                body: BodyLen::Length(answer.len() - head_end),
                status: 200,
                close: false
            }
        );
        assert_eq!(frame_http_head(&answer[..head_end - 1], false).unwrap(), HeadFrame::Partial);
    }

    #[test]
    fn requests_carry_method_path_headers_and_body() {
        let headers = vec![("X-Test".to_string(), "1".to_string())];
        let req = http_request_with("POST", "/a?b=c", "h:80", &headers, Some(b"hello"));
        assert_eq!(req, b"POST /a?b=c HTTP/1.1\r\nHost: h:80\r\nX-Test: 1\r\nContent-Length: 5\r\n\r\nhello");
        let own_host = vec![("host".to_string(), "example".to_string())];
        assert_eq!(http_request_with("GET", "/", "h:80", &own_host, None), b"GET / HTTP/1.1\r\nhost: example\r\n\r\n");
        assert_eq!(http_request("h:80"), b"GET / HTTP/1.1\r\nHost: h:80\r\n\r\n");
    }

    fn head(text: &str) -> HeadFrame {
        frame_http_head(text.as_bytes(), false).unwrap()
    }

    #[test]
    fn body_framing_follows_the_rfc() {
        let body = |h: HeadFrame| match h {
            HeadFrame::Complete { body, close, .. } => (body, close),
            HeadFrame::Partial => panic!("partial"),
        };
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(body(head(chunked)), (BodyLen::Chunked, false));
        assert_eq!(body(head("HTTP/1.1 200 OK\r\n\r\n")), (BodyLen::UntilClose, true));
        assert_eq!(body(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")), (BodyLen::UntilClose, true));
        assert_eq!(body(head("HTTP/1.1 100 Continue\r\n\r\n")), (BodyLen::Length(0), false));
        assert_eq!(body(head("HTTP/1.1 204 No Content\r\n\r\n")), (BodyLen::Length(0), false));
        assert_eq!(frame_http_answer(chunked.as_bytes(), false), Err(AnswerError::Chunked));
    }

    #[test]
    fn chunked_bodies_are_skipped_split_anywhere() {
        let body = b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for cut in 0..body.len() {
            let mut c = ChunkedBody::default();
            let (used, done) = c.skip(&body[..cut]).unwrap();
            if done {
                assert_eq!(used, end, "cut {cut}");
                continue;
            }
            assert_eq!(used, cut);
            let (more, done) = c.skip(&body[cut..]).unwrap();
            assert!(done, "cut {cut}");
            assert_eq!(cut + more, end, "cut {cut}");
        }
        let mut c = ChunkedBody::default();
        assert_eq!(c.skip(b"0\r\n\r\n").unwrap(), (5, true));
        assert!(ChunkedBody::default().skip(b"zz\r\n").is_err());
        assert!(ChunkedBody::default().skip(b"3\r\nabcXY").is_err(), "data not followed by CRLF");
    }

    #[test]
    fn echo_message_is_not_uniform() {
        let m = echo_message(64);
        assert_eq!(m.len(), 64);
        assert_ne!(m[0], m[1]);
    }
}
