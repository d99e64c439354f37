//! `QUIT`: replies `+OK` and closes the connection once that reply is sent.

use super::Applied;
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) struct Quit;

impl Quit {
    pub(crate) fn apply(self) -> Applied {
        Applied { reply: Some(Frame::ok()), ticket: None, close: true }
    }
}
