//! The open-file limit, which a thread-per-connection server meets before
//! any other: raised to its hard maximum at start, and the connection caps
//! fitted under it with a reserve for the database.
//!
//! When descriptors run out anyway (the caps are not the only users), both
//! accept loops back off and retry instead of ending, so the server comes
//! back by itself once the sockets are gone.

use crate::config::Config;

/// Descriptors kept out of the connection caps: the SQLite file, its WAL
/// and shared memory, the readers' connections, the listeners, the log.
pub const DATABASE_RESERVE: u64 = 64;

/// Descriptors one open WebSocket takes (its socket, shared by the reader
/// and the writer thread).
pub const FDS_PER_WEBSOCKET: u64 = 1;

/// Descriptors one open HTTP connection takes (tiny_http holds a read and a
/// write handle).
pub const FDS_PER_HTTP_CONNECTION: u64 = 2;

/// Raises the soft limit on open files to the hard limit; returns the soft
/// limit in force afterwards (`None` where it cannot be read).
pub fn raise_to_hard_maximum() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read or write the struct we
        // pass, which lives on this stack frame.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

/// Lowers `--max-connections` and `--max-http-connections` in proportion
/// until both, at full use, leave [`DATABASE_RESERVE`] descriptors free
/// under `open_files`. Returns whether anything changed.
pub fn fit_caps(config: &mut Config, open_files: u64) -> bool {
    let ws = config.max_connections as u64;
    let http = config.max_http_connections as u64;
    let needed = ws * FDS_PER_WEBSOCKET + http * FDS_PER_HTTP_CONNECTION;
    let available = open_files.saturating_sub(DATABASE_RESERVE);
    if needed <= available {
        return false;
    }
    let scale = |n: u64| ((n as u128 * available as u128 / needed as u128) as u64).max(1);
    config.max_connections = scale(ws) as usize;
    config.max_http_connections = scale(http) as usize;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fit_under_the_limit_with_the_reserve() {
        let mut config = Config::for_tests();
        config.max_connections = 4096;
        config.max_http_connections = 1024;
        assert!(fit_caps(&mut config, 256));
        let used = config.max_connections as u64 * FDS_PER_WEBSOCKET
            + config.max_http_connections as u64 * FDS_PER_HTTP_CONNECTION;
        assert!(used + DATABASE_RESERVE <= 256, "{used}");
        assert!(config.max_connections >= 1 && config.max_http_connections >= 1);

        let mut roomy = Config::for_tests();
        assert!(!fit_caps(&mut roomy, 1 << 20));
        assert_eq!(roomy.max_connections, 4096);
    }
}
