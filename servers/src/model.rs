//! What a concurrency model is, as data: [`ModelInfo`] holds everything the
//! CLI, the dispatch, the scenario tests and the bench read about a model, and
//! [`registry!`] turns the one list of entries below into the [`Model`] enum and
//! its table, so that adding a model means one entry here plus its module in
//! [`crate::models`].

use std::fmt;

use crate::chat::ChatRoom;
use crate::config::Knob;
use crate::models;
use crate::{Ctx, ServeError};

/// Everything known about one model, in one place.
#[derive(Debug)]
pub struct ModelInfo {
    pub model: Model,
    /// The name used on the command line (`c10k serve --model NAME`).
    pub name: &'static str,
    /// The model's id in the documents (`shared/seed-claims.md`).
    pub id: &'static str,
    /// The knobs this model takes; any other is refused.
    pub knobs: &'static [Knob],
    /// The knob that sets how many cores it can use (default: the CPUs), if any.
    pub cores_knob: Option<Knob>,
    /// It serves a fixed number of connections at once (one, processes x threads,
    /// workers) and the others wait, by design.
    pub fixed_concurrency: bool,
    /// One line: who blocks where, and what it costs.
    pub tradeoff: &'static str,
    /// Whether it serves `--proto chat`, and how it shares the room (or why not).
    pub chat: crate::chat::ChatRoom,
    /// Serve until a stop is requested.
    pub run: fn(&Ctx) -> Result<(), ServeError>,
}

/// Define [`Model`] and [`REGISTRY`] from one list of entries (the registry below).
macro_rules! registry {
    ($($variant:ident {
        name: $name:literal,
        id: $id:literal,
        knobs: [$($knob:ident),* $(,)?],
        cores_knob: $cores:expr,
        fixed_concurrency: $fixed:expr,
        run: $run:path,
        tradeoff: $tradeoff:literal,
        chat: $chat:expr $(,)?
    }),* $(,)?) => {
        /// A server concurrency model. Ids (`M0`..`M11`, `MN`, `AIO`) are those of
        /// the documents' model list (`shared/seed-claims.md`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Model {
            $($variant),*
        }

        /// Every model's facts, in [`Model`] order.
        pub const REGISTRY: &[$crate::model::ModelInfo] = &[$(
            $crate::model::ModelInfo {
                model: Model::$variant,
                name: $name,
                id: $id,
                knobs: &[$($crate::config::Knob::$knob),*],
                cores_knob: $cores,
                fixed_concurrency: $fixed,
                tradeoff: $tradeoff,
                chat: $chat,
                run: $run,
            }
        ),*];

        impl Model {
            /// Every model, in the registry's order.
            pub const ALL: [Model; REGISTRY.len()] = [$(Model::$variant),*];
        }
    };
}

// The registry: one entry per model, in the order `c10k models` lists them.
registry! {
    Iterative {
        name: "iterative", id: "M0", knobs: [], cores_knob: None, fixed_concurrency: true,
        run: models::iterative::run,
        tradeoff: "one connection at a time: no concurrency at all, one idle client stalls everyone",
        chat: ChatRoom::Refused("it serves one connection at a time, so no two members are ever connected together"),
    },
    Fork {
        name: "fork", id: "M1", knobs: [], cores_knob: None, fixed_concurrency: false,
        run: models::fork::run,
        tradeoff: "a process per connection: full isolation, a fork and a process's memory per client",
        chat: ChatRoom::Refused("a process per connection shares no memory: members in different processes cannot reach each other"),
    },
    Thread {
        name: "thread", id: "M2", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: models::thread::run,
        tradeoff: "a thread per connection: simple blocking code, a stack and a scheduler entry per client",
        chat: ChatRoom::Shared(
            "one Mutex<Room>; a sender writes a line into each member's outbox and onto its socket without blocking; \
             a member's thread (in ppoll) is woken by a signal only when its socket is full",
        ),
    },
    Prefork {
        name: "prefork", id: "M3", knobs: [Procs, ThreadsPerProc, ThreadStack], cores_knob: Some(Knob::Procs),
        fixed_concurrency: true,
        run: models::prefork::run,
        tradeoff: "N processes blocking in accept: no fork per client, but N connections at most at once",
        chat: ChatRoom::Refused("its processes share no memory and each serves one connection at a time: the room would be split"),
    },
    Pool {
        name: "pool", id: "M4", knobs: [Workers, Queue, ThreadStack], cores_knob: None, fixed_concurrency: true,
        run: models::pool::run,
        tradeoff: "fixed worker threads: bounded cost, but long-lived connections hold workers and others wait",
        chat: ChatRoom::Shared("as thread, on the workers: only --workers members are in the room at once, the others wait unjoined"),
    },
    Reactor {
        name: "reactor", id: "M5", knobs: [Backend, Trigger], cores_knob: None, fixed_concurrency: false,
        run: models::reactor::run,
        tradeoff: "one thread, epoll: cheap idle connections, but any slow handler stalls every connection",
        chat: ChatRoom::Shared("the loop owns the room (a lock no other thread takes); lines go through its inbox, written once a turn"),
    },
    ReactorTask {
        name: "reactor-task", id: "M6", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: models::reactor_task::run,
        tradeoff: "one I/O thread, a thread created per request: slow handlers tolerated, a spawn per request",
        chat: ChatRoom::Refused(
            "its threads compute answers to requests; a chat command is served against the room by the reactor, \
             so the model would be the plain reactor under another name",
        ),
    },
    ReactorConnThread {
        name: "reactor-conn-thread", id: "M7", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: models::reactor_conn_thread::run,
        tradeoff: "one I/O thread feeding a thread per connection: a thread per client again, plus two hand-offs",
        chat: ChatRoom::Refused(
            "its threads compute answers to requests; a chat command is served against the room by the reactor, \
             so the model would be the plain reactor under another name",
        ),
    },
    ReactorPool {
        name: "reactor-pool", id: "M8", knobs: [Workers, Pool], cores_knob: None, fixed_concurrency: false,
        run: models::reactor_pool::run,
        tradeoff: "one I/O thread hands requests to a pool: slow handlers tolerated, two hand-offs per request",
        chat: ChatRoom::Shared(
            "the reactor frames lines; the pool serves commands against one Mutex<Room> and posts lines back to the \
             reactor's inbox (a channel and a mio Waker)",
        ),
    },
    MultiReactor {
        name: "multi-reactor", id: "M9", knobs: [Threads], cores_knob: Some(Knob::Threads), fixed_concurrency: false,
        run: models::multi_reactor::run,
        tradeoff: "a reactor per core behind an acceptor: uses every core, a slow handler stalls its share",
        chat: ChatRoom::Shared(
            "one Mutex<Room>; a broadcast is one channel message per sub-reactor, woken by its mio Waker, which \
             writes it to its own members",
        ),
    },
    Reuseport {
        name: "reuseport", id: "M10", knobs: [Procs, SharedListener], cores_knob: Some(Knob::Procs),
        fixed_concurrency: false,
        run: models::reuseport::run,
        tradeoff: "a reactor per process on SO_REUSEPORT (Nginx): kernel balances accepts, no shared state",
        chat: ChatRoom::Refused("its processes share nothing but counters: each would hold a room of its own"),
    },
    MultiReactorPool {
        name: "multi-reactor-pool", id: "M11", knobs: [Threads, Workers, Pool], cores_knob: Some(Knob::Threads),
        fixed_concurrency: false,
        run: models::multi_reactor_pool::run,
        tradeoff: "reactors per core plus a work pool: most flexible, most hand-offs",
        chat: ChatRoom::Shared("as multi-reactor, with commands served by the pool"),
    },
    Tokio {
        name: "tokio", id: "MN", knobs: [Threads, GlobalQueueInterval, Procs], cores_knob: Some(Knob::Threads),
        fixed_concurrency: false,
        run: models::tokio::run,
        tradeoff: "M:N tasks over epoll (tokio): blocking-style code at reactor cost, a blocking call stalls a worker",
        chat: ChatRoom::Shared(
            "a Mutex<Room> for names; broadcasts and notices through a tokio broadcast channel each member's task \
             subscribes to when it joins, privates through the member's bounded mpsc",
        ),
    },
    Uring {
        name: "uring", id: "AIO", knobs: [Threads], cores_knob: Some(Knob::Threads), fixed_concurrency: false,
        run: models::uring::run,
        tradeoff: "io_uring completions: accept, recv and send submitted in batches, fewer syscalls",
        chat: ChatRoom::Shared("as multi-reactor between rings: one Mutex<Room>, a channel per ring, woken by a read on its eventfd"),
    },
}

impl Model {
    /// This model's entry in [`REGISTRY`].
    pub const fn info(self) -> &'static ModelInfo {
        // The registry and the enum come from one list, in one order.
        &REGISTRY[self as usize]
    }

    /// The name used on the command line (`c10k serve --model NAME`).
    pub const fn name(self) -> &'static str {
        self.info().name
    }

    /// The model's id in the documents.
    pub const fn id(self) -> &'static str {
        self.info().id
    }

    /// One line: who blocks where, and what it costs.
    pub fn tradeoff(self) -> &'static str {
        self.info().tradeoff
    }

    /// The knobs this model takes; any other is refused.
    pub fn knobs(self) -> &'static [Knob] {
        self.info().knobs
    }

    /// The model named `name` on the command line.
    pub fn from_name(name: &str) -> Option<Model> {
        REGISTRY.iter().find(|m| m.name == name).map(|m| m.model)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl clap::ValueEnum for Model {
    fn value_variants<'a>() -> &'a [Self] {
        &Model::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.id()))
    }
}

impl serde::Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Model {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Model::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown model {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_in_enum_order_and_names_are_unique() {
        for (i, info) in REGISTRY.iter().enumerate() {
            assert_eq!(info.model as usize, i, "{}", info.name);
            assert_eq!(Model::from_name(info.name), Some(info.model));
            assert!(
                info.cores_knob.is_none_or(|k| info.knobs.contains(&k)),
                "{}: cores knob not among its knobs",
                info.name
            );
        }
        let mut names: Vec<_> = REGISTRY.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
    }

    #[test]
    fn serde_uses_the_command_line_name() {
        let json = serde_json::to_string(&Model::MultiReactorPool).unwrap();
        assert_eq!(json, "\"multi-reactor-pool\"");
        assert_eq!(serde_json::from_str::<Model>(&json).unwrap(), Model::MultiReactorPool);
        assert!(serde_json::from_str::<Model>("\"nope\"").is_err());
    }
}
