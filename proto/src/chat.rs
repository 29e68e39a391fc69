//! The chat room's wire (document 002 §5): JSON lines, sans-IO.
//!
//! A member sends one JSON object per line (`\n`, or `\r\n`) and gets one per
//! line back. This module parses what members send into [`Command`]s and
//! writes every line the server sends; the room itself (who is in it, who gets
//! what) lives in `servers::chat`, because each server model shares it its own
//! way. A chat connection is a [`Session`](crate::Session) made with
//! [`Proto::Chat`](crate::Proto::Chat): the same driver loop as echo and HTTP
//! (write what is pending, read while it wants input), plus
//! [`take_commands`](crate::Session::take_commands) for the room and
//! [`deliver`](crate::Session::deliver) for what the room sends it.
//!
//! # Protocol
//!
//! From a member (the document's five types):
//!
//! ```text
//! {"type":"join","nickname":"Alice"}
//! {"type":"message","content":"Hello everyone!"}
//! {"type":"private","to":"Bob","content":"Hi Bob!"}
//! {"type":"list_users"}
//! {"type":"quit"}
//! ```
//!
//! From the server:
//!
//! ```text
//! {"type":"joined","nickname":"Alice","users":3}                      to the joiner: its join is done
//! {"type":"user_joined","nickname":"Alice","timestamp":"..."}         to everyone else in the room
//! {"type":"broadcast","from":"Alice","content":"...","timestamp":"2024-01-15 10:30:00"}
//!                                                                     to everyone in the room, sender included
//! {"type":"private","from":"Alice","content":"...","timestamp":"..."} to the one member named `to`
//! {"type":"users","users":["Alice","Bob"]}                            to who asked
//! {"type":"user_left","nickname":"Bob","reason":"quit","timestamp":"..."}
//!                                                                     to everyone else; reason quit, closed or slow
//! {"type":"bye"}                                                      to who quit, then the server closes
//! {"type":"error","message":"..."}                                    to who sent a line that could not be served
//! ```
//!
//! Timestamps are UTC, `YYYY-MM-DD HH:MM:SS` as in the document.
//!
//! # Bounds
//!
//! - A line is at most [`MAX_LINE`] bytes (newline excluded). A longer one
//!   gets an error line and the connection is closed once it is written: a
//!   line is the unit of work, and holding an unbounded one is what a hostile
//!   client would ask for.
//! - Bad JSON, an unknown `type`, a missing field: an error line, the
//!   connection stays open.
//! - Commands framed but not yet taken by the room: at most
//!   [`MAX_PENDING_COMMANDS`]; the session stops wanting input meanwhile, so
//!   received bytes held are at most a partial line and one read.
//! - Output (the member's outbox): a line is queued while less than
//!   [`OUTBOX_BOUND`] bytes wait; a member whose outbox holds that much when
//!   another line comes is *slow*: it is disconnected (not flushed) and
//!   counted, so a member that does not read costs at most the bound and one
//!   line, and never stalls whoever sent the line.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Longest line a member may send, newline excluded.
pub const MAX_LINE: usize = 4 * 1024;

/// Longest nickname, in bytes.
pub const MAX_NICKNAME: usize = 32;

/// Commands framed and waiting for the room before the session stops reading.
pub const MAX_PENDING_COMMANDS: usize = 32;

/// A member whose outbox holds this many bytes when another line comes is
/// disconnected as slow (the output bound every protocol shares).
pub const OUTBOX_BOUND: usize = crate::OUTPUT_HIGH_WATER;

/// What a member asks for: one line.
///
/// A line that is not a command is one too ([`Command::Invalid`],
/// [`Command::LineTooLong`], never parsed from JSON), so that its error line
/// is written in order with the answers to the lines around it, by the same
/// path.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    Join {
        nickname: String,
    },
    Message {
        content: String,
    },
    Private {
        to: String,
        content: String,
    },
    ListUsers,
    Quit,
    /// Bad JSON, an unknown type, a missing field: answered with an error line.
    #[serde(skip_deserializing)]
    Invalid {
        message: String,
    },
    /// A line over [`MAX_LINE`]: answered with an error line, then the
    /// connection closes (nothing after it was read).
    #[serde(skip_deserializing)]
    LineTooLong,
}

/// Why a member left the room (the `reason` of `user_left`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// It sent `quit`.
    Quit,
    /// Its connection ended (end of stream, reset, a protocol error).
    Closed,
    /// Its outbox passed [`OUTBOX_BOUND`]: it was disconnected.
    Slow,
}

impl Leave {
    pub fn name(self) -> &'static str {
        match self {
            Leave::Quit => "quit",
            Leave::Closed => "closed",
            Leave::Slow => "slow",
        }
    }
}

/// Parse one line (without its newline). `Err` is the error line's message.
pub fn parse(line: &[u8]) -> Result<Command, String> {
    serde_json::from_slice::<Command>(line).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("bad command: {e}"),
        _ => format!("bad JSON: {e}"),
    })
}

/// A nickname is 1 to [`MAX_NICKNAME`] bytes, without control characters.
pub fn check_nickname(nickname: &str) -> Result<(), String> {
    if nickname.is_empty() || nickname.len() > MAX_NICKNAME || nickname.chars().any(char::is_control) {
        return Err(format!("a nickname is 1 to {MAX_NICKNAME} bytes without control characters"));
    }
    Ok(())
}

/// Lines the server sends, each ending with `\n`. Built once per event and
/// shared by every recipient.
pub mod line {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Out<'a> {
        Joined { nickname: &'a str, users: usize },
        UserJoined { nickname: &'a str, timestamp: &'a str },
        Broadcast { from: &'a str, content: &'a str, timestamp: &'a str },
        Private { from: &'a str, content: &'a str, timestamp: &'a str },
        Users { users: &'a [&'a str] },
        UserLeft { nickname: &'a str, reason: &'a str, timestamp: &'a str },
        Bye,
        Error { message: &'a str },
    }

    fn encode(out: &Out<'_>) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(96);
        // Serializing strings and integers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut bytes, out);
        bytes.push(b'\n');
        bytes
    }

    pub fn joined(nickname: &str, users: usize) -> Vec<u8> {
        encode(&Out::Joined { nickname, users })
    }
    pub fn user_joined(nickname: &str) -> Vec<u8> {
        with_timestamp(|timestamp| encode(&Out::UserJoined { nickname, timestamp }))
    }
    pub fn broadcast(from: &str, content: &str) -> Vec<u8> {
        with_timestamp(|timestamp| encode(&Out::Broadcast { from, content, timestamp }))
    }
    pub fn private(from: &str, content: &str) -> Vec<u8> {
        with_timestamp(|timestamp| encode(&Out::Private { from, content, timestamp }))
    }
    pub fn users(users: &[&str]) -> Vec<u8> {
        encode(&Out::Users { users })
    }
    pub fn user_left(nickname: &str, reason: Leave) -> Vec<u8> {
        with_timestamp(|timestamp| encode(&Out::UserLeft { nickname, reason: reason.name(), timestamp }))
    }
    pub fn bye() -> Vec<u8> {
        encode(&Out::Bye)
    }
    pub fn error(message: &str) -> Vec<u8> {
        encode(&Out::Error { message })
    }
    /// The error line of [`Command::LineTooLong`].
    pub fn line_too_long() -> Vec<u8> {
        error(&format!("line over {} bytes: closing", super::MAX_LINE))
    }
}

thread_local! {
    static STAMP: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Call `f` with the current UTC time as `YYYY-MM-DD HH:MM:SS`, formatted once
/// a second per thread.
pub fn with_timestamp<R>(f: impl FnOnce(&str) -> R) -> R {
    let second = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    STAMP.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != second {
            *cell = (second, timestamp(second));
        }
        f(&cell.1)
    })
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC, proleptic Gregorian).
pub fn timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3_600, rem / 60 % 60, rem % 60)
}

/// The chat part of a [`Session`](crate::Session): commands framed and not yet
/// served, and the member's fate.
#[derive(Debug, Default)]
pub(crate) struct ChatState {
    pub(crate) commands: VecDeque<Command>,
    /// The commands last taken are being served elsewhere (a pool): no more
    /// are handed out until [`Session::commands_done`](crate::Session::commands_done),
    /// so a member's commands are served in order.
    pub(crate) in_flight: bool,
    /// Disconnected because its outbox passed [`OUTBOX_BOUND`].
    pub(crate) slow: bool,
}

/// The next line at the front of `data`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineFrame<'a> {
    /// No complete line yet (and what is there is within the bound).
    Partial,
    /// A line longer than [`MAX_LINE`] starts here.
    TooLong,
    /// A line without its line end, and the bytes it took with it.
    Line { line: &'a [u8], used: usize },
}

pub(crate) fn next_line(data: &[u8]) -> LineFrame<'_> {
    let Some(end) = data.iter().position(|&b| b == b'\n') else {
        return if data.len() > MAX_LINE { LineFrame::TooLong } else { LineFrame::Partial };
    };
    let line = &data[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return LineFrame::TooLong;
    }
    LineFrame::Line { line, used: end + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_commands_parse() {
        assert_eq!(parse(br#"{"type": "join", "nickname": "Alice"}"#), Ok(Command::Join { nickname: "Alice".into() }));
        assert_eq!(
            parse(br#"{"type":"message","content":"Hello everyone!"}"#),
            Ok(Command::Message { content: "Hello everyone!".into() })
        );
        assert_eq!(
            parse(br#"{"type":"private","to":"Bob","content":"Hi Bob!"}"#),
            Ok(Command::Private { to: "Bob".into(), content: "Hi Bob!".into() })
        );
        assert_eq!(parse(br#"{"type":"list_users"}"#), Ok(Command::ListUsers));
        assert_eq!(parse(br#"{"type":"quit"}"#), Ok(Command::Quit));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse(b"{not json").unwrap_err().starts_with("bad JSON"));
        assert!(parse(br#"{"type":"dance"}"#).unwrap_err().starts_with("bad command: unknown variant `dance`"));
        assert!(parse(br#"{"type":"join"}"#).unwrap_err().contains("missing field `nickname`"));
        assert!(parse(b"").unwrap_err().starts_with("bad JSON"));
        assert!(check_nickname("").is_err() && check_nickname("a\tb").is_err());
        assert!(check_nickname(&"x".repeat(MAX_NICKNAME + 1)).is_err());
        assert!(check_nickname("Alice").is_ok());
    }

    #[test]
    fn lines_are_json_with_a_newline() {
        let b = line::broadcast("Al\"ice", "hi\n");
        assert_eq!(*b.last().unwrap(), b'\n');
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["type"], "broadcast");
        assert_eq!(v["from"], "Al\"ice");
        assert_eq!(v["content"], "hi\n");
        assert_eq!(v["timestamp"].as_str().unwrap().len(), 19);
        assert_eq!(line::users(&["a", "b"]), b"{\"type\":\"users\",\"users\":[\"a\",\"b\"]}\n");
        assert_eq!(line::user_left("a", Leave::Slow).windows(15).filter(|w| w == b"\"reason\":\"slow\"").count(), 1);
        assert_eq!(line::bye(), b"{\"type\":\"bye\"}\n");
    }

    #[test]
    fn timestamps_are_the_documents_form() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp(1_705_314_600), "2024-01-15 10:30:00");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(timestamp(4_107_542_399), "2100-02-28 23:59:59");
    }

    #[test]
    fn framing_handles_crlf_and_bounds() {
        assert_eq!(next_line(b"a\r\nb"), LineFrame::Line { line: b"a", used: 3 });
        assert_eq!(next_line(b"b"), LineFrame::Partial);
        assert_eq!(next_line(&vec![b'x'; MAX_LINE + 1]), LineFrame::TooLong);
        assert_eq!(next_line(&vec![b'x'; MAX_LINE]), LineFrame::Partial);
        let mut exact = vec![b'x'; MAX_LINE];
        exact.extend_from_slice(b"\r\n");
        assert!(matches!(next_line(&exact), LineFrame::Line { used, .. } if used == MAX_LINE + 2));
        let mut over = vec![b'x'; MAX_LINE + 1];
        over.push(b'\n');
        assert_eq!(next_line(&over), LineFrame::TooLong);
    }
}
