//! `SET key value [NX|XX] [GET]`: the write path. The reply is held back until the
//! write is durable (see the session).
//!
//! Expiry options are refused rather than ignored: a client that asked for a TTL and
//! got `OK` would believe the key goes away, and Augur never expires keys.

use bytes::Bytes;

use super::{is, Applied, CommandError, Ctx, Parse};
use crate::engine::SetCondition;
use crate::server::frame::Frame;

const NO_EXPIRY: &str = "ERR EX/PX are not supported: Augur does not expire keys (see docs)";

#[derive(Debug)]
pub(crate) struct Set {
    key: Bytes,
    value: Bytes,
    condition: SetCondition,
    get: bool,
}

impl Set {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Set, CommandError> {
        let key = parse.required()?;
        let value = parse.required()?;
        let mut condition = SetCondition::Always;
        let mut get = false;
        while let Some(option) = parse.next() {
            if is(&option, "NX") && condition != SetCondition::IfPresent {
                condition = SetCondition::IfAbsent;
            } else if is(&option, "XX") && condition != SetCondition::IfAbsent {
                condition = SetCondition::IfPresent;
            } else if is(&option, "GET") {
                get = true;
            } else if ["EX", "PX", "EXAT", "PXAT", "KEEPTTL"].iter().any(|ttl| is(&option, ttl)) {
                return Err(CommandError::Other(NO_EXPIRY.to_string()));
            } else {
                return Err(CommandError::Syntax);
            }
        }
        Ok(Set { key, value, condition, get })
    }

    /// Without GET: `+OK`, or null when NX/XX did not hold. With GET: the previous
    /// value (or null) whether or not the write happened, as Redis 7 replies.
    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        if self.condition == SetCondition::Always && !self.get {
            return match ctx.engine().set(self.key, self.value).await {
                Ok(ticket) => Applied::write(Frame::ok(), ticket),
                Err(error) => Applied::engine_error(&error),
            };
        }
        match ctx.engine().set_conditional(self.key, self.value, self.condition).await {
            Ok(outcome) => {
                let reply = if self.get {
                    Frame::from_option(outcome.previous)
                } else if outcome.written {
                    Frame::ok()
                } else {
                    Frame::Null
                };
                Applied::write(reply, outcome.ticket)
            }
            Err(error) => Applied::engine_error(&error),
        }
    }
}
