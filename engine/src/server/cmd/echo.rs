//! `ECHO message`: returns its argument; clients use it to test a connection
//! round trip with a payload.

use bytes::Bytes;

use super::{Applied, CommandError, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Echo {
    message: Bytes,
}

impl Echo {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Echo, CommandError> {
        Ok(Echo { message: parse.required()? })
    }

    pub(crate) fn apply(self) -> Applied {
        Applied::reply(Frame::Bulk(self.message))
    }
}
