//! Command dispatch: the command table, argument parsing shared by every command, and
//! the [`Command`] enum with one variant per module in this directory.
//!
//! The table ([`COMMANDS`]) is the single place that knows each command's name, arity,
//! flags and key positions: dispatch checks arity against it (so every command gets
//! Redis's exact "wrong number of arguments" text for free), and `COMMAND` reports it
//! to clients that route or validate with it.
//!
//! Each command module has a struct (or enum, for those with subcommands) with
//! `parse`, which validates its arguments before anything runs, and `apply`, which
//! runs it and returns an [`Applied`]: the reply, and for writes the ticket the
//! session must wait on before sending that reply.

mod augur_model;
mod auth;
mod client;
mod command;
mod config;
mod dbsize;
mod del;
mod echo;
mod exists;
mod get;
mod hello;
mod info;
mod mget;
mod mset;
mod ping;
mod quit;
mod select;
mod set;
mod shutdown;

use bytes::Bytes;

use crate::engine::{Engine, WriteTicket};
use crate::server::frame::Frame;
use crate::server::session::ClientState;
use crate::server::Shared;

/// What a command needs while it runs.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) client: &'a mut ClientState,
}

impl Ctx<'_> {
    pub(crate) fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

/// The result of running a command.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The reply; `None` only for `SHUTDOWN`, which answers by closing.
    pub(crate) reply: Option<Frame>,
    /// For a write: durability of what it wrote. The reply must not reach the client
    /// before this resolved, and becomes the WAL's error if it fails.
    pub(crate) ticket: Option<WriteTicket>,
    /// Close the connection once the replies so far are sent (`QUIT`, `SHUTDOWN`).
    pub(crate) close: bool,
}

impl Applied {
    /// A read's (or a refused command's) reply.
    pub(crate) fn reply(frame: Frame) -> Applied {
        Applied { reply: Some(frame), ticket: None, close: false }
    }

    /// A write's reply, held back until `ticket` is durable.
    pub(crate) fn write(frame: Frame, ticket: WriteTicket) -> Applied {
        Applied { reply: Some(frame), ticket: Some(ticket), close: false }
    }

    /// The engine refused or failed the call.
    pub(crate) fn engine_error(error: &crate::error::EngineError) -> Applied {
        Applied::reply(Frame::Error(error.reply_text()))
    }
}

/// A command that cannot run as sent. `Display` is the full error reply text,
/// code included, in Redis's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CommandError {
    /// Not in the command table.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    Unknown { name: String, args: String },
    /// Argument count does not fit the command (`name` is `get` or `client|setname`).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// A container command without that subcommand.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand { command: &'static str, sub: String },
    /// Options that do not parse or do not go together.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument that should be an integer is not one.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// Any other refusal; the text includes its code.
    #[error("{0}")]
    Other(String),
    /// The request was not an array of bulk strings (the decoder never produces
    /// one; a frame built elsewhere might).
    #[error("ERR Protocol error: expected an array of bulk strings")]
    NotACommand,
}

impl CommandError {
    /// Redis 7's text for an unknown command: the name as sent, and the first
    /// arguments quoted, each cut so the list stays near 128 bytes.
    fn unknown(args: &[Bytes]) -> CommandError {
        let name = args.first().map(|n| lossy_prefix(n, 128)).unwrap_or_default();
        let mut list = String::new();
        for arg in args.iter().skip(1) {
            if list.len() >= 128 {
                break;
            }
            let room = 128 - list.len();
            list.push('\'');
            list.push_str(&lossy_prefix(arg, room));
            list.push_str("' ");
        }
        CommandError::Unknown { name, args: list }
    }

    pub(crate) fn unknown_subcommand(command: &'static str, sub: &[u8]) -> CommandError {
        CommandError::UnknownSubcommand { command, sub: lossy_prefix(sub, 128) }
    }
}

/// At most `max` bytes of `bytes`, as text (invalid UTF-8 replaced), for error
/// messages that quote what the client sent.
pub(crate) fn lossy_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes)).into_owned()
}

/// A command's static description, as `COMMAND` reports it.
#[derive(Debug)]
pub(crate) struct CommandSpec {
    pub(crate) name: &'static str,
    /// Redis's convention: N means exactly N arguments counting the name, -N at
    /// least N.
    pub(crate) arity: i64,
    pub(crate) flags: &'static [&'static str],
    pub(crate) first_key: i64,
    pub(crate) last_key: i64,
    pub(crate) step: i64,
    pub(crate) categories: &'static [&'static str],
}

impl CommandSpec {
    fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// `COMMAND INFO`'s entry (Redis 7's ten fields).
    pub(crate) fn info_frame(&self) -> Frame {
        let simple_set = |items: &[&str]| Frame::Set(items.iter().map(|s| Frame::simple(*s)).collect());
        Frame::Array(vec![
            Frame::bulk(self.name),
            Frame::Integer(self.arity),
            simple_set(self.flags),
            Frame::Integer(self.first_key),
            Frame::Integer(self.last_key),
            Frame::Integer(self.step),
            simple_set(self.categories),
            Frame::Array(vec![]),
            Frame::Array(vec![]),
            Frame::Array(vec![]),
        ])
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], $first:expr, $last:expr, $step:expr, [$($cat:literal),*]) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            first_key: $first,
            last_key: $last,
            step: $step,
            categories: &[$($cat),*],
        }
    };
}

/// Every command Augur serves, with Redis 7's arity, flags, key positions and ACL
/// categories for it.
// One line per command reads as a table; rustfmt would spread each over ten lines.
#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    spec!("augur.model", -2, ["admin"], 0, 0, 0, ["@admin", "@slow", "@dangerous"]),
    spec!("auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("client", -2, [], 0, 0, 0, ["@slow"]),
    spec!("command", -1, ["loading", "stale"], 0, 0, 0, ["@slow", "@connection"]),
    spec!("config", -2, [], 0, 0, 0, ["@slow"]),
    spec!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, ["@keyspace", "@read", "@fast"]),
    spec!("del", -2, ["write"], 1, -1, 1, ["@keyspace", "@write", "@slow"]),
    spec!("echo", 2, ["fast"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("exists", -2, ["readonly", "fast"], 1, -1, 1, ["@keyspace", "@read", "@fast"]),
    spec!("get", 2, ["readonly", "fast"], 1, 1, 1, ["@read", "@string", "@fast"]),
    spec!("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("info", -1, ["loading", "stale"], 0, 0, 0, ["@slow", "@dangerous"]),
    spec!("mget", -2, ["readonly", "fast"], 1, -1, 1, ["@read", "@string", "@fast"]),
    spec!("mset", -3, ["write", "denyoom"], 1, -1, 2, ["@write", "@string", "@slow"]),
    spec!("ping", -1, ["fast"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("quit", -1, ["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("select", 2, ["loading", "stale", "fast"], 0, 0, 0, ["@fast", "@connection"]),
    spec!("set", -3, ["write", "denyoom"], 1, 1, 1, ["@write", "@string", "@slow"]),
    spec!("shutdown", -1, ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], 0, 0, 0, ["@admin", "@slow", "@dangerous"]),
    spec!("unlink", -2, ["write", "fast"], 1, -1, 1, ["@keyspace", "@write", "@fast"]),
];

/// The table entry for a command name, in any letter case.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Walks a command's arguments (after its name), as mini-redis's `Parse` does.
#[derive(Debug)]
pub(crate) struct Parse {
    args: std::vec::IntoIter<Bytes>,
    /// Named in arity errors: `get`, or `client|setname` once a subcommand is known.
    name: String,
}

impl Parse {
    fn new(args: Vec<Bytes>, name: &str) -> Parse {
        let mut args = args.into_iter();
        args.next();
        Parse { args, name: name.to_string() }
    }

    /// Names the subcommand being parsed, for arity errors.
    pub(crate) fn subcommand(&mut self, sub: &str) {
        self.name = format!("{}|{}", self.name, sub);
    }

    pub(crate) fn arity_error(&self) -> CommandError {
        CommandError::WrongArity(self.name.clone())
    }

    /// The next argument, if any.
    pub(crate) fn next(&mut self) -> Option<Bytes> {
        self.args.next()
    }

    /// The next argument, which the command cannot do without.
    pub(crate) fn required(&mut self) -> Result<Bytes, CommandError> {
        self.args.next().ok_or_else(|| self.arity_error())
    }

    /// How many arguments are left.
    pub(crate) fn remaining(&self) -> usize {
        self.args.len()
    }

    /// Every argument left.
    pub(crate) fn rest(&mut self) -> Vec<Bytes> {
        self.args.by_ref().collect()
    }

    /// Fails with the arity error unless every argument was used.
    pub(crate) fn finish(&mut self) -> Result<(), CommandError> {
        if self.args.len() == 0 {
            Ok(())
        } else {
            Err(self.arity_error())
        }
    }
}

/// Whether `arg` is `word` in any letter case (option names are case-insensitive).
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer argument, parsed as strictly as Redis does.
pub(crate) fn parse_int(arg: &[u8]) -> Result<i64, CommandError> {
    crate::server::frame::parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// One parsed command, ready to run.
#[derive(Debug)]
pub(crate) enum Command {
    Auth(auth::Auth),
    AugurModel(augur_model::AugurModel),
    Client(client::Client),
    Introspect(command::CommandCmd),
    Config(config::Config),
    DbSize(dbsize::DbSize),
    Del(del::Del),
    Echo(echo::Echo),
    Exists(exists::Exists),
    Get(get::Get),
    Hello(hello::Hello),
    Info(info::Info),
    MGet(mget::MGet),
    MSet(mset::MSet),
    Ping(ping::Ping),
    Quit(quit::Quit),
    Select(select::Select),
    Set(set::Set),
    Shutdown(shutdown::ShutdownCmd),
}

impl Command {
    /// Parses a request (an array of bulk strings): looks the name up, checks arity
    /// against the table, then lets the command parse its own arguments.
    pub(crate) fn from_frame(frame: Frame) -> Result<Command, CommandError> {
        let Frame::Array(items) = frame else {
            return Err(CommandError::NotACommand);
        };
        let args = items
            .into_iter()
            .map(|item| match item {
                Frame::Bulk(bytes) => Ok(bytes),
                Frame::Simple(text) => Ok(Bytes::from(text)),
                _ => Err(CommandError::NotACommand),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_args(args)
    }

    fn from_args(args: Vec<Bytes>) -> Result<Command, CommandError> {
        let spec = args.first().and_then(|name| lookup(name)).ok_or_else(|| CommandError::unknown(&args))?;
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::WrongArity(spec.name.to_string()));
        }
        let mut parse = Parse::new(args, spec.name);
        let command = match spec.name {
            "auth" => Command::Auth(auth::Auth::parse(&mut parse)?),
            "augur.model" => Command::AugurModel(augur_model::AugurModel::parse(&mut parse)?),
            "client" => Command::Client(client::Client::parse(&mut parse)?),
            "command" => Command::Introspect(command::CommandCmd::parse(&mut parse)?),
            "config" => Command::Config(config::Config::parse(&mut parse)?),
            "dbsize" => Command::DbSize(dbsize::DbSize),
            "del" | "unlink" => Command::Del(del::Del::parse(&mut parse)),
            "echo" => Command::Echo(echo::Echo::parse(&mut parse)?),
            "exists" => Command::Exists(exists::Exists::parse(&mut parse)),
            "get" => Command::Get(get::Get::parse(&mut parse)?),
            "hello" => Command::Hello(hello::Hello::parse(&mut parse)?),
            "info" => Command::Info(info::Info::parse(&mut parse)),
            "mget" => Command::MGet(mget::MGet::parse(&mut parse)),
            "mset" => Command::MSet(mset::MSet::parse(&mut parse)?),
            "ping" => Command::Ping(ping::Ping::parse(&mut parse)?),
            "quit" => Command::Quit(quit::Quit),
            "select" => Command::Select(select::Select::parse(&mut parse)?),
            "set" => Command::Set(set::Set::parse(&mut parse)?),
            "shutdown" => Command::Shutdown(shutdown::ShutdownCmd::parse(&mut parse)?),
            other => {
                return Err(CommandError::Other(format!(
                    "ERR command '{other}' is in the command table but has no implementation"
                )))
            }
        };
        Ok(command)
    }

    /// Whether it may run before the client authenticated.
    pub(crate) fn allowed_unauthenticated(&self) -> bool {
        matches!(self, Command::Auth(_) | Command::Hello(_) | Command::Quit(_))
    }

    /// Runs the command.
    pub(crate) async fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match self {
            Command::Auth(c) => c.apply(ctx),
            Command::AugurModel(c) => c.apply(ctx).await,
            Command::Client(c) => c.apply(ctx),
            Command::Introspect(c) => c.apply(ctx),
            Command::Config(c) => c.apply(ctx),
            Command::DbSize(c) => c.apply(ctx),
            Command::Del(c) => c.apply(ctx).await,
            Command::Echo(c) => c.apply(),
            Command::Exists(c) => c.apply(ctx).await,
            Command::Get(c) => c.apply(ctx).await,
            Command::Hello(c) => c.apply(ctx),
            Command::Info(c) => c.apply(ctx),
            Command::MGet(c) => c.apply(ctx).await,
            Command::MSet(c) => c.apply(ctx).await,
            Command::Ping(c) => c.apply(),
            Command::Quit(c) => c.apply(),
            Command::Select(c) => c.apply(),
            Command::Set(c) => c.apply(ctx).await,
            Command::Shutdown(c) => c.apply(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&[u8]]) -> Result<Command, CommandError> {
        Command::from_args(words.iter().map(|w| Bytes::copy_from_slice(w)).collect())
    }

    fn err(words: &[&[u8]]) -> String {
        match parse(words) {
            Ok(command) => panic!("{command:?} parsed"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn unknown_commands_quote_their_first_arguments_like_redis_7() {
        assert_eq!(err(&[b"foo", b"a", b"b"]), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        assert_eq!(err(&[b"FOO"]), "ERR unknown command 'FOO', with args beginning with: ");
        let long = vec![b'x'; 300];
        let text = err(&[b"foo", &long, b"never"]);
        assert!(text.ends_with(&format!("'{}' ", "x".repeat(128))), "{text}");
    }

    #[test]
    fn arity_comes_from_the_table() {
        assert_eq!(err(&[b"GET"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&[b"get", b"a", b"b"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&[b"mset", b"a"]), "ERR wrong number of arguments for 'mset' command");
        assert_eq!(err(&[b"mset", b"a", b"b", b"c"]), "ERR wrong number of arguments for 'mset' command");
        assert_eq!(err(&[b"ping", b"a", b"b"]), "ERR wrong number of arguments for 'ping' command");
        assert_eq!(err(&[b"dbsize", b"x"]), "ERR wrong number of arguments for 'dbsize' command");
        assert_eq!(err(&[b"client", b"setname"]), "ERR wrong number of arguments for 'client|setname' command");
        assert!(parse(&[b"pInG"]).is_ok());
        assert!(parse(&[b"unlink", b"a", b"b"]).is_ok());
    }

    #[test]
    fn set_options_are_validated_before_running() {
        assert_eq!(err(&[b"set", b"k", b"v", b"nx", b"xx"]), "ERR syntax error");
        assert_eq!(err(&[b"set", b"k", b"v", b"bogus"]), "ERR syntax error");
        for ttl in [&b"EX"[..], b"px", b"EXAT", b"pxat", b"KEEPTTL"] {
            assert_eq!(
                err(&[b"set", b"k", b"v", ttl, b"10"]),
                "ERR EX/PX are not supported: Augur does not expire keys (see docs)"
            );
        }
        assert!(parse(&[b"set", b"k", b"v", b"NX", b"get"]).is_ok());
    }

    #[test]
    fn the_table_has_one_entry_per_name_and_every_entry_parses() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert!(COMMANDS[i + 1..].iter().all(|other| other.name != spec.name), "{} twice", spec.name);
            assert!(lookup(spec.name.to_uppercase().as_bytes()).is_some());
            // Whatever the arguments, the name must reach a parser, not the
            // "no implementation" fallback.
            let mut words: Vec<&[u8]> = vec![spec.name.as_bytes()];
            words.extend(std::iter::repeat_n(&b"1"[..], spec.arity.unsigned_abs() as usize - 1));
            if let Err(CommandError::Other(text)) = parse(&words) {
                assert!(!text.contains("no implementation"), "{text}");
            }
        }
    }
}
