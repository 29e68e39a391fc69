//! Placeholder while the model is being written.

use crate::{Ctx, Model, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    Err(ServeError::Unsupported {
        model: ctx.config.model,
        reason: "not built yet".into(),
    })
}

#[allow(dead_code)]
const _MODEL: Model = Model::Iterative;
