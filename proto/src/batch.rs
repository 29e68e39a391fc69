//! Requests framed on one thread and answered on another: what a reactor that
//! hands work to a pool (M8, M11) ships across threads.

use crate::http::{self, Request};
use crate::Work;

/// The most bytes an answer to one HTTP request takes (the longest, `431`
/// with `Connection: close`, is 198), counted for each request of a batch
/// before it is answered.
pub(crate) const MAX_HTTP_ANSWER: usize = 256;

/// Complete requests of one connection, in order, not yet answered.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes of echo requests (HTTP answers do not depend on request bytes).
    data: Vec<u8>,
    /// Each request and the length of its bytes in `data` (0 for HTTP).
    requests: Vec<(Request, usize)>,
    /// The most bytes the answers will take: the echoed bytes, and
    /// [`MAX_HTTP_ANSWER`] per HTTP request.
    answer_bytes: usize,
}

/// The answers to a [`Batch`].
#[derive(Debug, Default)]
pub struct Answers {
    pub bytes: Vec<u8>,
    pub answered: u64,
    pub errors: u64,
}

impl Batch {
    pub(crate) fn push(&mut self, request: Request, frame: &[u8]) {
        let len = if request.reply == http::Reply::Echo { frame.len() } else { 0 };
        self.data.extend_from_slice(&frame[..len]);
        self.requests.push((request, len));
        self.answer_bytes += if len > 0 { len } else { MAX_HTTP_ANSWER };
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Requests in the batch.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// The most output bytes the batch will become: what a session counts
    /// against its output bound for requests framed and not answered yet (64
    /// bytes a request, as counted before, let 1,024 pipelined `GET`s through,
    /// whose 132 KiB of answers then doubled the bound).
    pub(crate) fn held(&self) -> usize {
        self.answer_bytes
    }

    /// Do each request's work and encode its answer: the pool's part.
    pub fn answer(&self, work: &Work) -> Answers {
        let mut answers = Answers::default();
        let mut at = 0;
        for (request, len) in &self.requests {
            if request.reply.is_handled() {
                work.perform();
            } else {
                answers.errors += 1;
            }
            http::answer(request, &self.data[at..at + len], &mut answers.bytes);
            answers.answered += 1;
            at += len;
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Reply;

    #[test]
    fn no_http_answer_is_longer_than_counted() {
        for reply in Reply::HTTP {
            for (keep_alive, http10) in [(true, false), (false, false), (true, true), (false, true)] {
                let request = Request { reply, head: false, keep_alive, http10 };
                let mut out = Vec::new();
                http::answer(&request, b"", &mut out);
                assert!(out.len() <= MAX_HTTP_ANSWER, "{reply:?}: {} bytes", out.len());
            }
        }
    }
}
