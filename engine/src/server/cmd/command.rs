//! `COMMAND`, `COMMAND COUNT | INFO | DOCS | LIST`: introspection of the command
//! table. redis-cli asks for it at start-up (hints, completion) and cluster-aware
//! clients use it to find key positions, so it must answer in Redis 7's shapes even
//! though the content is Augur's short list.

use bytes::Bytes;

use super::{is, lookup, Applied, CommandError, Ctx, Parse, COMMANDS};
use crate::server::frame::Frame;

#[derive(Debug)]
pub(crate) enum CommandCmd {
    All,
    Count,
    Info(Vec<Bytes>),
    Docs,
    List,
    Help,
}

impl CommandCmd {
    pub(crate) fn parse(parse: &mut Parse) -> Result<CommandCmd, CommandError> {
        let Some(sub) = parse.next() else {
            return Ok(CommandCmd::All);
        };
        let command = if is(&sub, "COUNT") {
            parse.subcommand("count");
            CommandCmd::Count
        } else if is(&sub, "INFO") {
            return Ok(CommandCmd::Info(parse.rest()));
        } else if is(&sub, "DOCS") {
            // Docs are optional for clients (redis-cli falls back to no hints); an
            // empty map for any names is a valid answer.
            parse.rest();
            return Ok(CommandCmd::Docs);
        } else if is(&sub, "LIST") {
            if parse.remaining() > 0 {
                return Err(CommandError::Syntax);
            }
            CommandCmd::List
        } else if is(&sub, "HELP") {
            parse.subcommand("help");
            CommandCmd::Help
        } else {
            return Err(CommandError::unknown_subcommand("COMMAND", &sub));
        };
        parse.finish()?;
        Ok(command)
    }

    pub(crate) fn apply(self, _ctx: &mut Ctx<'_>) -> Applied {
        Applied::reply(match self {
            CommandCmd::All => Frame::Array(COMMANDS.iter().map(|spec| spec.info_frame()).collect()),
            CommandCmd::Count => Frame::Integer(i64::try_from(COMMANDS.len()).unwrap_or(i64::MAX)),
            CommandCmd::Info(names) if names.is_empty() => {
                Frame::Array(COMMANDS.iter().map(|spec| spec.info_frame()).collect())
            }
            CommandCmd::Info(names) => Frame::Array(
                names.iter().map(|name| lookup(name).map_or(Frame::Null, |spec| spec.info_frame())).collect(),
            ),
            CommandCmd::Docs => Frame::Map(vec![]),
            CommandCmd::List => Frame::Array(COMMANDS.iter().map(|spec| Frame::bulk(spec.name)).collect()),
            CommandCmd::Help => Frame::Array(
                [
                    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "(no subcommand)",
                    "    Return details about all commands.",
                    "COUNT",
                    "    Return the total number of commands in this server.",
                    "LIST",
                    "    Return a list of all commands in this server.",
                    "INFO [<command-name> ...]",
                    "    Return details about multiple commands.",
                    "DOCS [<command-name> ...]",
                    "    Return documentation details about multiple commands (none are kept).",
                    "HELP",
                    "    Print this help.",
                ]
                .into_iter()
                .map(Frame::simple)
                .collect(),
            ),
        })
    }
}
