//! `AUTH [username] password`, and the credential check `HELLO … AUTH` shares.
//!
//! Augur has Redis's single `default` user: with `requirepass` set it needs that
//! password, without it any password is accepted for `default` (Redis's `nopass`).
//! The comparison takes time that depends only on the attempt's length, never on
//! how much of it matched, so the password cannot be guessed byte by byte from
//! response times.

use bytes::Bytes;

use super::{Applied, CommandError, Ctx, Parse};
use crate::server::frame::Frame;
use crate::server::Shared;

pub(crate) const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

const NO_PASSWORD_SET: &str = "ERR AUTH <password> called without any password configured for the default user. \
                               Are you sure your configuration is correct?";

#[derive(Debug)]
pub(crate) struct Auth {
    user: Option<Bytes>,
    password: Bytes,
}

impl Auth {
    pub(crate) fn parse(parse: &mut Parse) -> Result<Auth, CommandError> {
        let first = parse.required()?;
        match (parse.next(), parse.remaining()) {
            (None, _) => Ok(Auth { user: None, password: first }),
            (Some(password), 0) => Ok(Auth { user: Some(first), password }),
            _ => Err(CommandError::Syntax),
        }
    }

    pub(crate) fn apply(self, ctx: &mut Ctx<'_>) -> Applied {
        if self.user.is_none() && ctx.shared.requirepass.is_none() {
            return Applied::reply(Frame::error(NO_PASSWORD_SET));
        }
        if credentials_ok(ctx.shared, self.user.as_deref(), &self.password) {
            ctx.client.authenticated = true;
            Applied::reply(Frame::ok())
        } else {
            // As in Redis, a failed attempt leaves an earlier successful one standing.
            Applied::reply(Frame::error(WRONGPASS))
        }
    }
}

/// Whether `user` (absent means `default`) and `password` log in.
pub(crate) fn credentials_ok(shared: &Shared, user: Option<&[u8]>, password: &[u8]) -> bool {
    // The user name is not secret (there is only one), so a plain comparison is fine.
    if user.is_some_and(|u| u != b"default") {
        return false;
    }
    match &shared.requirepass {
        None => true,
        Some(secret) => constant_time_eq(password, secret.as_bytes()),
    }
}

/// Compares without an early exit. The loop runs over the attempt, wrapping around
/// the secret, so its length is the only thing timing can reveal, and that is the
/// attacker's own input.
fn constant_time_eq(attempt: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(attempt.len() != secret.len());
    if secret.is_empty() {
        return diff == 0 && attempt.is_empty();
    }
    for (i, &byte) in attempt.iter().enumerate() {
        diff |= byte ^ secret.get(i % secret.len()).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret!", b"s3cret"));
        assert!(!constant_time_eq(b"s3creT", b"s3cret"));
        // Wrapping around the secret must not make a repeated secret match.
        assert!(!constant_time_eq(b"s3crets3cret", b"s3cret"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
