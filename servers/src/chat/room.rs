//! The room itself, with no I/O and no locking: who is in it under which
//! nickname, and what each command makes the server send to whom. Every model
//! serves commands through [`Room::serve`], so the answers are the same
//! everywhere; the models differ in how the [`Effect`]s reach the members.

use std::collections::HashMap;
use std::sync::Arc;

use proto::chat::{check_nickname, line, Command, Leave};

/// A member's id: unique in the process for its whole life.
pub type MemberId = u64;

/// What serving a command makes the server do. `H` is how a model reaches a
/// member (a shared outbox, a loop and slot, a channel).
#[derive(Debug)]
pub enum Effect<H> {
    /// A line to the member whose command this is.
    Reply(Vec<u8>),
    /// The member is now in the room (the line is its acknowledgment): from
    /// here on it gets every [`Effect::All`].
    Joined(Vec<u8>),
    /// A line to every member in the room, but `except`.
    All { line: Arc<[u8]>, except: Option<MemberId> },
    /// A line to one member.
    One { to: H, to_id: MemberId, line: Arc<[u8]> },
    /// The member quit: flush what it has, then close.
    Close,
}

struct Entry<H> {
    id: MemberId,
    handle: H,
}

/// See the module documentation.
pub struct Room<H> {
    by_nick: HashMap<String, Entry<H>>,
    nick_of: HashMap<MemberId, String>,
}

impl<H> Default for Room<H> {
    fn default() -> Self {
        Room { by_nick: HashMap::new(), nick_of: HashMap::new() }
    }
}

impl<H: Clone> Room<H> {
    /// Members in the room.
    pub fn len(&self) -> usize {
        self.by_nick.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_nick.is_empty()
    }

    /// Every member: id and handle.
    pub fn members(&self) -> impl Iterator<Item = (MemberId, &H)> {
        self.by_nick.values().map(|e| (e.id, &e.handle))
    }

    /// Serve one command of member `id` (reached through `handle`), appending
    /// what must be sent to `out`, in order.
    pub fn serve(&mut self, id: MemberId, handle: &H, command: Command, out: &mut Vec<Effect<H>>) {
        let me = self.nick_of.get(&id).cloned();
        match (command, me) {
            (Command::Join { nickname }, None) => {
                if let Err(why) = check_nickname(&nickname) {
                    return out.push(Effect::Reply(line::error(&why)));
                }
                if self.by_nick.contains_key(&nickname) {
                    return out.push(Effect::Reply(line::error(&format!("nickname {nickname:?} is taken"))));
                }
                let notice = line::user_joined(&nickname);
                self.by_nick.insert(nickname.clone(), Entry { id, handle: handle.clone() });
                self.nick_of.insert(id, nickname.clone());
                out.push(Effect::Joined(line::joined(&nickname, self.by_nick.len())));
                out.push(Effect::All { line: notice.into(), except: Some(id) });
            }
            (Command::Join { .. }, Some(me)) => {
                out.push(Effect::Reply(line::error(&format!("already joined as {me:?}"))))
            }
            (Command::ListUsers, _) => {
                let mut names: Vec<&str> = self.by_nick.keys().map(String::as_str).collect();
                names.sort_unstable();
                out.push(Effect::Reply(line::users(&names)));
            }
            (Command::Quit, me) => {
                if let Some(me) = me {
                    self.remove(id, &me);
                    out.push(Effect::All { line: line::user_left(&me, Leave::Quit).into(), except: Some(id) });
                }
                out.push(Effect::Reply(line::bye()));
                out.push(Effect::Close);
            }
            (Command::Invalid { message }, _) => out.push(Effect::Reply(line::error(&message))),
            (Command::LineTooLong, _) => {
                out.push(Effect::Reply(line::line_too_long()));
                out.push(Effect::Close);
            }
            (Command::Message { .. } | Command::Private { .. }, None) => {
                out.push(Effect::Reply(line::error("join first")));
            }
            (Command::Message { content }, Some(me)) => {
                out.push(Effect::All { line: line::broadcast(&me, &content).into(), except: None });
            }
            (Command::Private { to, content }, Some(me)) => match self.by_nick.get(&to) {
                Some(target) => out.push(Effect::One {
                    to: target.handle.clone(),
                    to_id: target.id,
                    line: line::private(&me, &content).into(),
                }),
                None => out.push(Effect::Reply(line::error(&format!("no member named {to:?}")))),
            },
        }
    }

    /// Member `id` left (its connection ended): the notice to everyone else,
    /// if it was in the room.
    pub fn leave(&mut self, id: MemberId, reason: Leave) -> Option<Arc<[u8]>> {
        let me = self.nick_of.get(&id)?.clone();
        self.remove(id, &me);
        Some(line::user_left(&me, reason).into())
    }

    fn remove(&mut self, id: MemberId, nick: &str) {
        self.nick_of.remove(&id);
        self.by_nick.remove(nick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(room: &mut Room<u8>, id: MemberId, command: &str) -> Vec<Effect<u8>> {
        let mut out = Vec::new();
        room.serve(id, &(id as u8), proto::chat::parse(command.as_bytes()).unwrap(), &mut out);
        out
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn join_message_private_list_quit() {
        let mut room = Room::default();
        let out = serve(&mut room, 1, r#"{"type":"join","nickname":"Alice"}"#);
        assert!(matches!(&out[0], Effect::Joined(l) if text(l).contains(r#""users":1"#)));
        assert!(matches!(&out[1], Effect::All { except: Some(1), .. }));
        let out = serve(&mut room, 2, r#"{"type":"join","nickname":"Alice"}"#);
        assert!(matches!(&out[..], [Effect::Reply(l)] if text(l).contains("taken")));
        serve(&mut room, 2, r#"{"type":"join","nickname":"Bob"}"#);
        let out = serve(&mut room, 1, r#"{"type":"message","content":"hi"}"#);
        assert!(matches!(&out[..], [Effect::All { except: None, line }] if text(line).contains(r#""from":"Alice""#)));
        let out = serve(&mut room, 1, r#"{"type":"private","to":"Bob","content":"psst"}"#);
        assert!(matches!(&out[..], [Effect::One { to: 2, to_id: 2, .. }]));
        let out = serve(&mut room, 1, r#"{"type":"private","to":"Carol","content":"?"}"#);
        assert!(matches!(&out[..], [Effect::Reply(l)] if text(l).contains("no member named")));
        let out = serve(&mut room, 3, r#"{"type":"list_users"}"#);
        assert!(matches!(&out[..], [Effect::Reply(l)] if text(l).contains(r#"["Alice","Bob"]"#)));
        let out = serve(&mut room, 3, r#"{"type":"message","content":"x"}"#);
        assert!(matches!(&out[..], [Effect::Reply(l)] if text(l).contains("join first")));
        let out = serve(&mut room, 2, r#"{"type":"quit"}"#);
        assert!(matches!(&out[..], [Effect::All { .. }, Effect::Reply(_), Effect::Close]));
        assert_eq!(room.len(), 1);
        assert!(room.leave(2, Leave::Closed).is_none(), "already gone");
        assert!(text(&room.leave(1, Leave::Slow).unwrap()).contains(r#""reason":"slow""#));
        assert!(room.is_empty());
    }
}
