//! `GET key`: a read through the engine (memory, then the store on a miss).

use bytes::Bytes;

use super::{Applied, CommandError, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Get {
    key: Bytes,
}

impl Get {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Get, CommandError> {
        Ok(Get { key: parse.required()? })
    }

    /// The value, or null when the key exists neither in memory nor in the store.
    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().get(&self.key).await {
            Ok(value) => Applied::reply(Frame::from_option(value)),
            Err(error) => Applied::engine_error(&error),
        }
    }
}
