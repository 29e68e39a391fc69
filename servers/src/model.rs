//! The concurrency models, their ids in the documents, and their trade-offs.

use std::fmt;

/// A server concurrency model. Ids (`M0`..`M11`, `MN`, `AIO`, `SEL`) are those of
/// the documents' model list (`shared/seed-claims.md`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    Iterative,
    Fork,
    Thread,
    Prefork,
    Pool,
    Reactor,
    ReactorPool,
    MultiReactor,
    Reuseport,
    MultiReactorPool,
    Tokio,
    Uring,
}

impl Model {
    pub const ALL: [Model; 12] = [
        Model::Iterative,
        Model::Fork,
        Model::Thread,
        Model::Prefork,
        Model::Pool,
        Model::Reactor,
        Model::ReactorPool,
        Model::MultiReactor,
        Model::Reuseport,
        Model::MultiReactorPool,
        Model::Tokio,
        Model::Uring,
    ];

    /// The name used on the command line (`c10k serve --model NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Fork => "fork",
            Model::Thread => "thread",
            Model::Prefork => "prefork",
            Model::Pool => "pool",
            Model::Reactor => "reactor",
            Model::ReactorPool => "reactor-pool",
            Model::MultiReactor => "multi-reactor",
            Model::Reuseport => "reuseport",
            Model::MultiReactorPool => "multi-reactor-pool",
            Model::Tokio => "tokio",
            Model::Uring => "uring",
        }
    }

    /// The model's id in the documents.
    pub fn id(self) -> &'static str {
        match self {
            Model::Iterative => "M0",
            Model::Fork => "M1",
            Model::Thread => "M2",
            Model::Prefork => "M3",
            Model::Pool => "M4",
            Model::Reactor => "M5",
            Model::ReactorPool => "M8",
            Model::MultiReactor => "M9",
            Model::Reuseport => "M10",
            Model::MultiReactorPool => "M11",
            Model::Tokio => "MN",
            Model::Uring => "AIO",
        }
    }

    /// One line: who blocks where, and what it costs.
    pub fn tradeoff(self) -> &'static str {
        match self {
            Model::Iterative => "one connection at a time: no concurrency at all, one idle client stalls everyone",
            Model::Fork => "a process per connection: full isolation, a fork and a process's memory per client",
            Model::Thread => "a thread per connection: simple blocking code, a stack and a scheduler entry per client",
            Model::Prefork => "N processes blocking in accept: no fork per client, but N connections at most at once",
            Model::Pool => {
                "fixed worker threads: bounded cost, but long-lived connections hold workers and others wait"
            }
            Model::Reactor => "one thread, epoll: cheap idle connections, but any slow handler stalls every connection",
            Model::ReactorPool => {
                "one I/O thread hands requests to a pool: slow handlers tolerated, two hand-offs per request"
            }
            Model::MultiReactor => {
                "a reactor per core behind an acceptor: uses every core, a slow handler stalls its share"
            }
            Model::Reuseport => {
                "a reactor per process on SO_REUSEPORT (Nginx): kernel balances accepts, no shared state"
            }
            Model::MultiReactorPool => "reactors per core plus a work pool: most flexible, most hand-offs",
            Model::Tokio => {
                "M:N tasks over epoll (tokio): blocking-style code at reactor cost, a blocking call stalls a worker"
            }
            Model::Uring => "io_uring completions: accept, recv and send submitted in batches, fewer syscalls",
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
