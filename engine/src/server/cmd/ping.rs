//! `PING [message]`: the liveness probe every client library and load balancer sends.

use bytes::Bytes;

use super::{Applied, CommandError, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Ping {
    message: Option<Bytes>,
}

impl Ping {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Ping, CommandError> {
        let message = parse.next();
        parse.finish()?;
        Ok(Ping { message })
    }

    /// `+PONG`, or the message back as a bulk string.
    pub(crate) fn apply(self) -> Applied {
        Applied::reply(match self.message {
            None => Frame::simple("PONG"),
            Some(message) => Frame::Bulk(message),
        })
    }
}
