//! `MSET key value [key value …]`: several writes as one WAL record, so after a crash
//! all of them are recovered or none.

use bytes::Bytes;

use super::{Applied, CommandError, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct MSet {
    entries: Vec<(Bytes, Bytes)>,
}

impl MSet {
    pub(crate) fn parse(parse: &mut Parse) -> Result<MSet, CommandError> {
        if !parse.remaining().is_multiple_of(2) {
            return Err(parse.arity_error());
        }
        let mut entries = Vec::with_capacity(parse.remaining() / 2);
        while let (Some(key), Some(value)) = (parse.next(), parse.next()) {
            entries.push((key, value));
        }
        Ok(MSet { entries })
    }

    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().set_many(self.entries).await {
            Ok(ticket) => Applied::write(Frame::ok(), ticket),
            Err(error) => Applied::engine_error(&error),
        }
    }
}
