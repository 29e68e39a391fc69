//! Requests framed on one thread and answered on another: what a reactor that
//! hands work to a pool (M8, M11) ships across threads.

use crate::http::{self, Request};
use crate::Work;

/// Complete requests of one connection, in order, not yet answered.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes of echo requests (HTTP answers do not depend on request bytes).
    data: Vec<u8>,
    /// Each request and the length of its bytes in `data` (0 for HTTP).
    requests: Vec<(Request, usize)>,
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
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Requests in the batch.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Bytes the batch holds (for bounding what a connection may queue).
    pub(crate) fn held(&self) -> usize {
        self.data.len() + self.requests.len() * 64
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
