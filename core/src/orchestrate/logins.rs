//! Password logins: the check, and the lock after too many wrong passwords in a row.
//!
//! After `[login] attempts-allowed` wrong passwords in a row, a user's password logins are
//! refused for a while, as CloudStack's `incorrect.login.attempts.allowed` has it. CloudStack
//! disables the user until an administrator enables it again, and never locks its built-in
//! admin; here every lock runs out by itself instead, the admin's included: a lock that
//! lasted until an administrator acts would let anyone who knows a username shut its owner
//! out for good, the built-in admin (whom no one else may be there to enable) most of all,
//! while an admin never locked could be guessed at without end. To keep guessing slow all
//! the same, each lock lasts twice as long as the one before it (`lock-ms`, doubling up to
//! `lock-max-ms`) until a good login. enableUser lifts a lock at once.
//!
//! A lock refuses password logins only: API keys and open sessions keep working, since
//! whoever guesses has neither, and cutting them would hand the guesser the owner's
//! automation. A refused login answers exactly as a wrong password does and takes as long
//! (the password is checked all the same); the lock shows in the event log (USER.LOCK, and
//! refused logins as USER.LOGIN warnings) and in listUsers (state `locked`).

use crate::api::error::ApiError;
use crate::auth::passwords;
use crate::auth::store::{self, UserRow};
use crate::db::{DbError, format_time, now_ms};
use crate::events::{self, Event};

use super::Orchestrator;

impl Orchestrator {
    /// The user `username` in the domain at `domain_path`, if `password` is theirs and they
    /// may log in; otherwise the same failure, whatever the reason.
    pub async fn password_login(&self, username: &str, domain_path: &str, password: &str) -> Result<UserRow, ApiError> {
        let Some(user) = store::user_by_login(&self.db, username, domain_path).await? else {
            // As long as for a user who exists: the answer's timing must not tell names apart.
            passwords::verify(password, passwords::NO_ONE).await;
            return Err(ApiError::login_failed());
        };
        let good = passwords::verify(password, &user.password_hash).await;
        if !user.active() {
            return Err(ApiError::login_failed());
        }
        let now = now_ms();
        if user.locked_at(now) {
            let refused = store::count_login_failure(&self.db, user.id, now).await?;
            // At 1, 2, 4, 8… refusals: each lock is on record, but a flood of attempts does
            // not flood the event log.
            if refused.count_ones() == 1 {
                let until = format_time(user.locked_until.unwrap_or(now));
                let text = format!(
                    "Login refused: user {} is locked until {until} after wrong passwords ({refused} refused during this lock)",
                    user.username
                );
                self.login_event(&user, "USER.LOGIN", text).await?;
            }
            return Err(ApiError::login_failed());
        }
        if good {
            if user.login_failures != 0 || user.lock_count != 0 || user.locked_until.is_some() {
                store::clear_login_failures(self.db.pool(), user.id).await?;
            }
            return Ok(user);
        }
        if self.login.attempts_allowed == 0 {
            return Err(ApiError::login_failed());
        }
        let failures = store::count_login_failure(&self.db, user.id, now).await?;
        if failures >= i64::from(self.login.attempts_allowed) {
            let lock = self.login.lock_for(user.lock_count);
            let until = now.saturating_add(lock.as_millis() as i64);
            if store::lock_user(&self.db, user.id, now, until).await? {
                let text = format!(
                    "User {} locked for {} s after {failures} wrong passwords in a row",
                    user.username,
                    lock.as_secs_f64()
                );
                tracing::warn!("{text}");
                self.login_event(&user, "USER.LOCK", text).await?;
            }
        }
        Err(ApiError::login_failed())
    }

    /// A warning about `user`'s logins, seen by their account and by administrators.
    async fn login_event(&self, user: &UserRow, kind: &str, description: String) -> Result<(), DbError> {
        let event = Event { kind, level: "WARN", description, resource: Some(("User", &user.uuid, &user.username)) };
        events::record_for_account(&self.db, user.account_id, user.domain_id, event).await
    }
}
