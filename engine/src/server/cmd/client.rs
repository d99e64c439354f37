//! `CLIENT SETNAME | GETNAME | ID | INFO | SETINFO | HELP`: the per-connection
//! subcommands client libraries send on connect (redis-rs and others send
//! `CLIENT SETINFO LIB-NAME/LIB-VER` and ignore the answer; connection pools name
//! their connections).

use std::fmt::Write as _;

use bytes::Bytes;

use super::{is, Applied, CommandError, Ctx, Parse};
use crate::server::frame::Frame;

pub(crate) const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

#[derive(Debug)]
pub(crate) enum Client {
    SetName(Bytes),
    GetName,
    Id,
    Info,
    SetInfo { lib_name: bool, value: Bytes },
    Help,
}

/// Redis allows only printable ASCII without spaces in names, so that `CLIENT LIST`
/// style lines stay parseable.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

impl Client {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Client, CommandError> {
        let sub = parse.required()?;
        let command = if is(&sub, "SETNAME") {
            parse.subcommand("setname");
            let name = parse.required()?;
            if !valid_name(&name) {
                return Err(CommandError::Other(BAD_NAME.to_string()));
            }
            Client::SetName(name)
        } else if is(&sub, "GETNAME") {
            parse.subcommand("getname");
            Client::GetName
        } else if is(&sub, "ID") {
            parse.subcommand("id");
            Client::Id
        } else if is(&sub, "INFO") {
            parse.subcommand("info");
            Client::Info
        } else if is(&sub, "SETINFO") {
            parse.subcommand("setinfo");
            let attribute = parse.required()?;
            let value = parse.required()?;
            let lib_name = if is(&attribute, "LIB-NAME") {
                true
            } else if is(&attribute, "LIB-VER") {
                false
            } else {
                return Err(CommandError::Other(format!(
                    "ERR Unrecognized option '{}'",
                    super::lossy_prefix(&attribute, 128)
                )));
            };
            if !valid_name(&value) {
                return Err(CommandError::Other(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    if lib_name { "lib-name" } else { "lib-ver" }
                )));
            }
            Client::SetInfo { lib_name, value }
        } else if is(&sub, "HELP") {
            parse.subcommand("help");
            Client::Help
        } else {
            return Err(CommandError::unknown_subcommand("CLIENT", &sub));
        };
        parse.finish()?;
        Ok(command)
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        let client = &mut *ctx.client;
        Applied::reply(match self {
            Client::SetName(name) => {
                client.name = (!name.is_empty()).then_some(name);
                Frame::ok()
            }
            Client::GetName => Frame::from_option(client.name.clone()),
            Client::Id => Frame::Integer(i64::try_from(client.id).unwrap_or(i64::MAX)),
            Client::SetInfo { lib_name, value } => {
                let value = (!value.is_empty()).then_some(value);
                if lib_name {
                    client.lib_name = value;
                } else {
                    client.lib_ver = value;
                }
                Frame::ok()
            }
            Client::Info => {
                let text =
                    |v: &Option<Bytes>| v.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
                let mut line = String::new();
                // The fields Redis 7.2 prints that mean something here, in its order.
                let _ = writeln!(
                    line,
                    "id={} addr={} laddr={} name={} age={} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 \
                     cmd=client|info user=default redir=-1 resp={} lib-name={} lib-ver={}",
                    client.id,
                    addr(client.addr),
                    addr(client.local_addr),
                    text(&client.name),
                    client.connected_at.elapsed().as_secs(),
                    client.proto.version(),
                    text(&client.lib_name),
                    text(&client.lib_ver),
                );
                Frame::text(line)
            }
            Client::Help => Frame::Array(
                [
                    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GETNAME",
                    "    Return the name of the current connection.",
                    "ID",
                    "    Return the ID of the current connection.",
                    "INFO",
                    "    Return information about the current client connection.",
                    "SETINFO <option> <value>",
                    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                    "SETNAME <name>",
                    "    Assign the name <name> to the current connection.",
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
