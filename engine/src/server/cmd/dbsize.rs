//! `DBSIZE`: the number of keys held in memory (cached plus not yet flushed). The
//! store's own count would need a full scan, so this is a lower bound on the keys
//! that exist, which is what the reply documents.

use super::del::saturating_i64;
use super::{Applied, Ctx};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct DbSize;

impl DbSize {
    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        Applied::reply(Frame::Integer(saturating_i64(ctx.engine().memory_keys())))
    }
}
