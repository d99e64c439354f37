//! `HELLO [protover [AUTH username password] [SETNAME name]]`: protocol negotiation.
//!
//! Modern clients open every connection with it (redis-rs for RESP3, and with
//! credentials to authenticate in the same round trip). The reply is a map describing
//! the server, encoded in the protocol just selected. `server` and `version` say
//! `redis` / `7.2.0` because clients gate features on them; INFO carries Augur's own
//! version.

use bytes::Bytes;

use super::auth::{credentials_ok, WRONGPASS};
use super::client::valid_name;
use super::{is, Applied, CommandError, Ctx, Parse};
use crate::server::frame::{parse_i64, Frame, Protocol};

const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                            HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select \
                            the RESP protocol version at the same time";

#[derive(Debug)]
pub(crate) struct Hello {
    proto: Option<Protocol>,
    auth: Option<(Bytes, Bytes)>,
    name: Option<Bytes>,
}

impl Hello {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Hello, CommandError> {
        let mut hello = Hello { proto: None, auth: None, name: None };
        let Some(version) = parse.next() else {
            return Ok(hello);
        };
        hello.proto = match parse_i64(&version) {
            None => {
                return Err(CommandError::Other("ERR Protocol version is not an integer or out of range".to_string()))
            }
            Some(2) => Some(Protocol::Resp2),
            Some(3) => Some(Protocol::Resp3),
            Some(_) => return Err(CommandError::Other("NOPROTO unsupported protocol version".to_string())),
        };
        while let Some(option) = parse.next() {
            if is(&option, "AUTH") && parse.remaining() >= 2 {
                if let (Some(user), Some(password)) = (parse.next(), parse.next()) {
                    hello.auth = Some((user, password));
                }
            } else if is(&option, "SETNAME") && parse.remaining() >= 1 {
                let name = parse.required()?;
                if !valid_name(&name) {
                    return Err(CommandError::Other(super::client::BAD_NAME.to_string()));
                }
                hello.name = Some(name);
            } else {
                return Err(CommandError::Other(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    super::lossy_prefix(&option, 128)
                )));
            }
        }
        Ok(hello)
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        if let Some((user, password)) = &self.auth {
            if !credentials_ok(ctx.shared, Some(&user[..]), password) {
                return Applied::reply(Frame::error(WRONGPASS));
            }
            ctx.client.authenticated = true;
        }
        if !ctx.client.authenticated {
            return Applied::reply(Frame::error(NOAUTH_HELLO));
        }
        if let Some(name) = self.name {
            ctx.client.name = (!name.is_empty()).then_some(name);
        }
        if let Some(proto) = self.proto {
            ctx.client.proto = proto;
        }
        let field = |name: &'static str, value: Frame| (Frame::bulk(name), value);
        Applied::reply(Frame::Map(vec![
            field("server", Frame::bulk("redis")),
            field("version", Frame::bulk(super::info::REDIS_VERSION)),
            field("proto", Frame::Integer(ctx.client.proto.version())),
            field("id", Frame::Integer(i64::try_from(ctx.client.id).unwrap_or(i64::MAX))),
            field("mode", Frame::bulk("standalone")),
            field("role", Frame::bulk("master")),
            field("modules", Frame::Array(vec![])),
        ]))
    }
}
