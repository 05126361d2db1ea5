//! `chat-server admin ...` and `chat-server backup PATH`: the operator's
//! tools. The admin subcommands do the admin page's work from the shell,
//! on the database file. SQLite lets this process write while the
//! server runs (each write waits its turn for the file's lock); the
//! server notices a disabled account within a fraction of a second
//! ([`crate::accounts::watch`]), and everything else it reads from the
//! database when it needs it.

use std::process::ExitCode;

use chrono::Utc;

use crate::accounts::{self, AccountError};
use crate::backup;
use crate::changes;
use crate::config::{AdminCommand, Command, Config};
use crate::models::{Role, UserId, format_timestamp};
use crate::repo::{SearchIndex, SqliteStore, Store};

/// Runs `command`; what it did goes to stdout, what went wrong to stderr.
pub fn run(config: &Config, command: &Command) -> ExitCode {
    let admin = match command {
        Command::Admin(admin) => admin,
        Command::Backup { path } => return run_backup(config, path),
    };
    // The index is the server's business: left as it is.
    let opened = SqliteStore::open_with(
        &config.db,
        config.durability,
        changes::nowhere(),
        SearchIndex::AsIs,
    );
    let store = match opened {
        Ok(store) => store,
        Err(e) => {
            eprintln!("cannot open {}: {e}", config.db.display());
            return ExitCode::FAILURE;
        }
    };
    match run_admin(&store, admin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run_admin(store: &dyn Store, command: &AdminCommand) -> Result<(), AccountError> {
    match command {
        AdminCommand::Users => {
            println!(
                "{:<6} {:<24} {:<7} {:<9} {:<25} EMAIL",
                "ID", "NICKNAME", "ROLE", "STATE", "LAST SEEN"
            );
            for account in store.accounts()? {
                println!(
                    "{:<6} {:<24} {:<7} {:<9} {:<25} {}",
                    account.id,
                    account.nickname,
                    account.role.as_str(),
                    if account.disabled {
                        "disabled"
                    } else {
                        "active"
                    },
                    account
                        .last_seen_at
                        .as_ref()
                        .map_or_else(|| "never".to_owned(), format_timestamp),
                    account.email,
                );
            }
        }
        AdminCommand::Disable { nickname } => {
            accounts::set_disabled(store, None, user_id(store, nickname)?, true)?;
            println!("disabled {nickname}: their sessions ended and their connections close");
        }
        AdminCommand::Enable { nickname } => {
            accounts::set_disabled(store, None, user_id(store, nickname)?, false)?;
            println!("enabled {nickname}");
        }
        AdminCommand::Promote { nickname } => {
            accounts::set_role(store, user_id(store, nickname)?, Role::Admin)?;
            println!("{nickname} is now an admin");
        }
        AdminCommand::ResetPassword { nickname, base_url } => {
            let token = accounts::create_reset_token(store, user_id(store, nickname)?)?;
            println!(
                "give {nickname} this link; it sets a new password once, within 24 hours:\n{}{}",
                base_url.trim_end_matches('/'),
                accounts::reset_path(&token)
            );
        }
        AdminCommand::Invite {
            uses,
            expires_in,
            base_url,
        } => {
            let invite = accounts::create_invite(store, None, *uses, *expires_in, Utc::now())?;
            println!(
                "invitation {} for {uses} account(s), valid until {}:\n{}{}",
                invite.code,
                invite
                    .expires_at
                    .as_ref()
                    .map_or_else(|| "forever".to_owned(), format_timestamp),
                base_url.trim_end_matches('/'),
                invite.url
            );
        }
    }
    Ok(())
}

fn run_backup(config: &Config, target: &std::path::Path) -> ExitCode {
    match backup::backup(&config.db, &config.files_dir(), target) {
        Ok(report) => {
            println!(
                "backed up the database to {} ({} bytes) and {} files ({} bytes) to {}",
                report.database.display(),
                report.database_bytes,
                report.files,
                report.file_bytes,
                report.files_dir.display()
            );
            if report.missing > 0 {
                println!(
                    "{} files were deleted with their messages while the backup ran; \
                     those messages show without their file after a restore",
                    report.missing
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn user_id(store: &dyn Store, nickname: &str) -> Result<UserId, AccountError> {
    store
        .user_by_nickname(nickname)?
        .map(|user| user.id)
        .ok_or(AccountError::NoSuchUser)
}
