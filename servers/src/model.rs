//! What a concurrency model is, as data: [`ModelInfo`] holds everything the
//! CLI, the dispatch, the scenario tests and the bench read about a model, and
//! [`registry!`] turns one list of entries (in [`crate::models`]) into the
//! [`Model`] enum and its table, so that adding a model means one entry plus
//! its module.

use std::fmt;

use crate::config::Knob;
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

/// Define [`Model`] and [`REGISTRY`] from one list of entries (see [`crate::models`]).
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
pub(crate) use registry;

pub use crate::models::{Model, REGISTRY};

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
