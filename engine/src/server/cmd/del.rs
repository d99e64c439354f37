//! `DEL key [key …]` and `UNLINK key [key …]`. Redis's UNLINK frees memory in the
//! background; Augur's deletes are already cheap in memory, so both are one command.

use bytes::Bytes;

use super::{Applied, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Del {
    keys: Vec<Bytes>,
}

impl Del {
    pub(crate) fn parse(parse: &mut Parse) -> Del {
        Del { keys: parse.rest() }
    }

    /// How many of the keys existed (the engine asks the store about uncached ones).
    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().delete_many(self.keys).await {
            Ok((existed, ticket)) => Applied::write(Frame::Integer(saturating_i64(existed)), ticket),
            Err(error) => Applied::engine_error(&error),
        }
    }
}

pub(crate) fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
