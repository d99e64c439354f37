//! `AUGUR.MODEL LIST | PROMOTE version | ROLLBACK`: the learned prefetcher's model
//! registry for operators. LIST replies with a JSON array of versions (kind,
//! creation time, training window, offline validation, live trial figures, state);
//! PROMOTE makes a version active now (from memory or its checkpoint); ROLLBACK
//! goes back to the last version before the active one that was not rejected.

use super::{is, parse_int, Applied, CommandError, Ctx, Parse};
use crate::predict::registry::AdminCommand;
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct AugurModel {
    command: AdminCommand,
}

impl AugurModel {
    pub(crate) fn parse(parse: &mut Parse) -> Result<AugurModel, CommandError> {
        let sub = parse.required()?;
        let command = if is(&sub, "list") {
            AdminCommand::List
        } else if is(&sub, "rollback") {
            AdminCommand::Rollback
        } else if is(&sub, "promote") {
            let version = parse_int(&parse.required()?)?;
            let version = u32::try_from(version).map_err(|_| CommandError::NotInteger)?;
            AdminCommand::Promote(version)
        } else {
            return Err(CommandError::unknown_subcommand("augur.model", &sub));
        };
        parse.finish()?;
        Ok(AugurModel { command })
    }

    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match ctx.engine().model_admin(self.command).await {
            Ok(text) => Applied::reply(Frame::Bulk(text.into())),
            Err(e) => Applied::reply(Frame::Error(format!("ERR {e}"))),
        }
    }
}
