//! `MGET key [key …]`: many reads in one round trip; the engine sends every miss to
//! the store as one batch.

use bytes::Bytes;

use super::{Applied, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct MGet {
    keys: Vec<Bytes>,
}

impl MGet {
    pub(crate) fn parse(parse: &mut Parse) -> MGet {
        MGet { keys: parse.rest() }
    }

    /// One slot per key, in request order, null where a key is missing.
    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().get_many(&self.keys).await {
            Ok(values) => Applied::reply(Frame::Array(values.into_iter().map(Frame::from_option).collect())),
            Err(error) => Applied::engine_error(&error),
        }
    }
}
