//! `SELECT index`: Augur has one keyspace, database 0. Accepting `SELECT 0` matters
//! because clients configured with a database number send it on every connection.

use super::{parse_int, Applied, CommandError, Parse};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Select {
    index: i64,
}

impl Select {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Select, CommandError> {
        let index = parse_int(&parse.required()?)?;
        Ok(Select { index })
    }

    pub(crate) fn apply(self) -> Applied {
        Applied::reply(if self.index == 0 { Frame::ok() } else { Frame::error("ERR DB index is out of range") })
    }
}
