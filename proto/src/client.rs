//! The load generator's side of the wire: the request it sends, and framing
//! the answers it gets back (status and `Content-Length`, pipelined in order).

/// Largest answer head a client accepts before calling the answer bad.
pub const MAX_ANSWER_HEAD: usize = 16 * 1024;

const MAX_HEADERS: usize = 32;

/// The `GET /` request a load generator sends, with `Host` set to `host`.
pub fn http_request(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
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
}

/// The echo request of `size` bytes a load generator sends: a fixed pattern
/// (not all one byte, so a shifted or mixed-up echo does not match).
pub fn echo_message(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 23) as u8).collect()
}

/// The head of one HTTP answer framed at the front of a client's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadFrame {
    /// A whole head of `head_len` bytes; `body_len` body bytes follow it.
    Complete { head_len: usize, body_len: usize, status: u16, close: bool },
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
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
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
    let body_len = if no_body { 0 } else { length.ok_or(AnswerError::NoLength)? };
    Ok(HeadFrame::Complete { head_len, body_len, status, close })
}

/// Frame the HTTP answer at the front of `input`. `head_request` says the
/// request was `HEAD` (no body follows whatever `Content-Length` says).
pub fn frame_http_answer(input: &[u8], head_request: bool) -> Result<AnswerFrame, AnswerError> {
    match frame_http_head(input, head_request)? {
        HeadFrame::Partial => Ok(AnswerFrame::Partial),
        HeadFrame::Complete { head_len, body_len, status, close } => {
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
            HeadFrame::Complete { head_len: head_end, body_len: answer.len() - head_end, status: 200, close: false }
        );
        assert_eq!(frame_http_head(&answer[..head_end - 1], false).unwrap(), HeadFrame::Partial);
    }

    #[test]
    fn echo_message_is_not_uniform() {
        let m = echo_message(64);
        assert_eq!(m.len(), 64);
        assert_ne!(m[0], m[1]);
    }
}
