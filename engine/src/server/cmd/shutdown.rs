//! `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]`: stops the whole server.
//!
//! The options are accepted for compatibility but change nothing: Augur never loses
//! acknowledged writes on shutdown (they are in the WAL, and the caller of the server
//! flushes them to the store), so there is nothing to save or skip. As in Redis, a
//! successful SHUTDOWN has no reply: the connection just closes.

use super::{is, Applied, CommandError, Ctx, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct ShutdownCmd {
    abort: bool,
}

impl ShutdownCmd {
    pub(crate) fn parse(parse: &mut Parse) -> Result<ShutdownCmd, CommandError> {
        let (mut save, mut nosave, mut abort) = (false, false, false);
        for option in parse.rest() {
            if is(&option, "NOSAVE") {
                nosave = true;
            } else if is(&option, "SAVE") {
                save = true;
            } else if is(&option, "ABORT") {
                abort = true;
            } else if !(is(&option, "NOW") || is(&option, "FORCE")) {
                return Err(CommandError::Syntax);
            }
        }
        if save && nosave {
            return Err(CommandError::Syntax);
        }
        Ok(ShutdownCmd { abort })
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        if self.abort {
            // Shutdown is immediate once triggered; there is never one to abort.
            return Applied::reply(Frame::error("ERR No shutdown in progress."));
        }
        tracing::info!(client = ctx.client.id, addr = ?ctx.client.addr, "SHUTDOWN requested by a client");
        ctx.shared.shutdown.trigger();
        Applied { reply: None, ticket: None, close: true }
    }
}
