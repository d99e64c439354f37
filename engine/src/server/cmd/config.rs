//! `CONFIG GET pattern …` and `CONFIG SET name value …`.
//!
//! Tools probe `CONFIG GET` (save, appendonly, maxmemory) to learn how a server
//! persists and sizes itself, so it reports Augur's real behaviour in Redis's terms:
//! always "AOF on" (the WAL), never RDB snapshots. Only settings that live in the
//! server and can change safely at runtime are settable; the engine's are fixed at
//! start-up. `requirepass` is never echoed back.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{is, Applied, CommandError, Ctx, Parse};
use crate::server::frame::{parse_i64, Frame};
use crate::server::Shared;

/// Every parameter `CONFIG GET` knows, in the order it reports them.
const PARAMS: &[&str] = &[
    "access-log",
    "appendfsync",
    "appendonly",
    "bind",
    "databases",
    "maxclients",
    "maxmemory",
    "port",
    "prefetch-target-accuracy",
    "proto-max-bulk-len",
    "requirepass",
    "save",
    "timeout",
];

#[derive(Debug)]
pub(crate) enum Config {
    Get(Vec<Bytes>),
    Set(Vec<(Bytes, Bytes)>),
    Help,
}

/// A validated `CONFIG SET` assignment.
enum Change {
    AccessLog(bool),
    MaxClients(usize),
    TimeoutSecs(u64),
    MaxBulkLen(usize),
    PrefetchTarget(f32),
}

impl Config {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Config, CommandError> {
        let sub = parse.required()?;
        if is(&sub, "GET") {
            parse.subcommand("get");
            if parse.remaining() == 0 {
                return Err(parse.arity_error());
            }
            Ok(Config::Get(parse.rest()))
        } else if is(&sub, "SET") {
            parse.subcommand("set");
            if parse.remaining() == 0 || !parse.remaining().is_multiple_of(2) {
                return Err(parse.arity_error());
            }
            let mut pairs = Vec::with_capacity(parse.remaining() / 2);
            while let (Some(name), Some(value)) = (parse.next(), parse.next()) {
                pairs.push((name, value));
            }
            Ok(Config::Set(pairs))
        } else if is(&sub, "HELP") {
            parse.subcommand("help");
            parse.finish()?;
            Ok(Config::Help)
        } else {
            Err(CommandError::unknown_subcommand("CONFIG", &sub))
        }
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        match self {
            Config::Get(patterns) => {
                // A parameter matched by several patterns is reported once.
                let pairs = PARAMS
                    .iter()
                    .filter(|name| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
                    .map(|name| (Frame::bulk(*name), Frame::bulk(value(ctx.shared, name))))
                    .collect();
                Applied::reply(Frame::Map(pairs))
            }
            Config::Set(pairs) => Applied::reply(match set(ctx.shared, &pairs) {
                Ok(()) => Frame::ok(),
                Err(text) => Frame::Error(text),
            }),
            Config::Help => Applied::reply(Frame::Array(
                [
                    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "GET <pattern>",
                    "    Return parameters matching the glob-like <pattern> and their values.",
                    "SET <directive> <value>",
                    "    Set the configuration <directive> to <value> (maxclients, timeout, proto-max-bulk-len, access-log, prefetch-target-accuracy).",
                    "HELP",
                    "    Print this help.",
                ]
                .into_iter()
                .map(Frame::simple)
                .collect(),
            )),
        }
    }
}

fn value(shared: &Shared, name: &str) -> String {
    let engine = shared.engine.config();
    match name {
        "access-log" => if shared.engine.access_log_enabled() { "yes" } else { "no" }.to_string(),
        "appendfsync" => engine.sync.to_string(),
        "appendonly" => "yes".to_string(),
        "bind" => shared.local_addr.ip().to_string(),
        "databases" => "1".to_string(),
        "maxclients" => shared.max_clients.load(Ordering::Relaxed).to_string(),
        "maxmemory" => engine.cache_bytes.to_string(),
        "port" => shared.local_addr.port().to_string(),
        // Empty when the learned prefetcher is not the one running: there is no target.
        "prefetch-target-accuracy" => {
            shared.engine.prefetch_target_accuracy().map_or_else(String::new, |t| t.to_string())
        }
        "proto-max-bulk-len" => shared.max_bulk_len.load(Ordering::Relaxed).to_string(),
        // Redis echoes the password; Augur only says whether one is set.
        "requirepass" if shared.requirepass.is_some() => "***".to_string(),
        "timeout" => (shared.idle_timeout_ms.load(Ordering::Relaxed) / 1000).to_string(),
        _ => String::new(),
    }
}

/// Validates every assignment, then applies them all, so a bad one changes nothing
/// (as Redis 7 does).
fn set(shared: &Shared, pairs: &[(Bytes, Bytes)]) -> Result<(), String> {
    let mut changes = Vec::with_capacity(pairs.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        let name_text = super::lossy_prefix(name, 128);
        let failed = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name_text}') - {why}");
        let Some(param) = PARAMS.iter().find(|p| is(name, p)) else {
            return Err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name_text}'"));
        };
        if pairs[..i].iter().any(|(earlier, _)| is(earlier, param)) {
            return Err(failed("duplicate parameter"));
        }
        let integer = || parse_i64(value).ok_or_else(|| failed("argument couldn't be parsed into an integer"));
        let change = match *param {
            "maxclients" => match usize::try_from(integer()?) {
                Ok(n) if n >= 1 => Change::MaxClients(n),
                _ => return Err(failed("argument must be between 1 and 4294967295 inclusive")),
            },
            "timeout" => match u64::try_from(integer()?) {
                Ok(secs) => Change::TimeoutSecs(secs),
                Err(_) => return Err(failed("argument must be between 0 and 2147483647 inclusive")),
            },
            "access-log" => match value.to_ascii_lowercase().as_slice() {
                b"yes" => Change::AccessLog(true),
                b"no" => Change::AccessLog(false),
                _ => return Err(failed("argument must be 'yes' or 'no'")),
            },
            "proto-max-bulk-len" => {
                let bytes = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| crate::config::parse_bytes(text).ok())
                    .ok_or_else(|| failed("argument must be a memory value"))?;
                match usize::try_from(bytes) {
                    Ok(n) if n >= 1024 * 1024 => Change::MaxBulkLen(n),
                    _ => return Err(failed("argument must be between 1048576 and 9223372036854775807 inclusive")),
                }
            }
            "prefetch-target-accuracy" => {
                let target = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .ok_or_else(|| failed("argument couldn't be parsed into a number"))?;
                Change::PrefetchTarget(shared.engine.check_prefetch_target_accuracy(target).map_err(|e| failed(&e))?)
            }
            _ => return Err(failed("can't set immutable config")),
        };
        changes.push(change);
    }
    for change in changes {
        match change {
            Change::MaxClients(n) => shared.max_clients.store(n, Ordering::Relaxed),
            Change::AccessLog(on) => shared.engine.set_access_log(on),
            Change::TimeoutSecs(secs) => shared.idle_timeout_ms.store(secs.saturating_mul(1000), Ordering::Relaxed),
            Change::MaxBulkLen(n) => shared.max_bulk_len.store(n, Ordering::Relaxed),
            Change::PrefetchTarget(target) => shared.engine.set_prefetch_target_accuracy(target),
        }
    }
    Ok(())
}

/// Redis's `stringmatchlen` with `nocase`: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
///
/// Iterative with a single backtrack point (the last `*`), so a pattern such as
/// `*a*a*a*…b` runs in time proportional to pattern times text rather than
/// exponentially.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        let c = text[t];
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                backtrack = Some((p, t));
                continue;
            }
            Some(_) => {
                if let Some(next) = match_one(pattern, p, c) {
                    p = next;
                    t += 1;
                    continue;
                }
            }
            None => {}
        }
        match backtrack {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                backtrack = Some((star_p, t));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// If the single-character pattern element at `p` matches `c`, where the next
/// element starts.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    let c = c.to_ascii_lowercase();
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern.get(p + 1)?.to_ascii_lowercase() == c).then_some(p + 2),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            if negate {
                i += 1;
            }
            let mut matched = false;
            // An unterminated class runs to the end of the pattern, as in Redis.
            while let Some(&pc) = pattern.get(i) {
                if pc == b']' {
                    break;
                }
                if pc == b'\\' && i + 1 < pattern.len() {
                    i += 1;
                    matched |= pattern.get(i).map(u8::to_ascii_lowercase) == Some(c);
                } else if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() {
                    let (mut lo, mut hi) = (pc.to_ascii_lowercase(), pattern.get(i + 2)?.to_ascii_lowercase());
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    matched |= (lo..=hi).contains(&c);
                    i += 2;
                } else {
                    matched |= pc.to_ascii_lowercase() == c;
                }
                i += 1;
            }
            (matched != negate).then_some(i + 1)
        }
        &other => (other.to_ascii_lowercase() == c).then_some(p + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_like_redis() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("*", "maxmemory"));
        assert!(m("max*", "maxmemory"));
        assert!(m("MAX*", "maxmemory"));
        assert!(!m("max*", "appendonly"));
        assert!(m("*memory", "maxmemory"));
        assert!(m("max?emory", "maxmemory"));
        assert!(m("ma[xy]memory", "maxmemory"));
        assert!(!m("ma[^xy]memory", "maxmemory"));
        assert!(m("ma[a-z]memory", "maxmemory"));
        assert!(m("a*o*y", "appendonly"));
        assert!(!m("a*o*z", "appendonly"));
        assert!(m("save", "save"));
        assert!(!m("sav", "save"));
        assert!(!m("saves", "save"));
        assert!(m("s\\ave", "save"));
        assert!(m("**", ""));
        assert!(!m("?", ""));
        assert!(m("[", "[") == m("[", "x")); // unterminated class: no panic, consistent
        let hostile = "*a".repeat(200) + "b";
        assert!(!m(&hostile, &"a".repeat(300)));
    }
}
