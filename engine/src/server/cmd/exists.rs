//! `EXISTS key [key …]`: how many of the keys exist, a repeated key counting each
//! time, as in Redis.

use bytes::Bytes;

use super::del::saturating_i64;
use super::{Applied, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Exists {
    keys: Vec<Bytes>,
}

impl Exists {
    pub(crate) fn parse(parse: &mut Parse) -> Exists {
        Exists { keys: parse.rest() }
    }

    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().exists_many(&self.keys).await {
            Ok(count) => Applied::reply(Frame::Integer(saturating_i64(count))),
            Err(error) => Applied::engine_error(&error),
        }
    }
}
