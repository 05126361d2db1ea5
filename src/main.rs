//! `chat-server`: parse the configuration, start, wait for SIGINT or
//! SIGTERM, shut down cleanly. Everything else lives in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use chat_server::{Config, Server};
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    let config = Config::parse();
    if let Some(command) = &config.command {
        // Tools print what they did; only problems reach the log.
        init_logging(log::LevelFilter::Warn);
        return chat_server::cli::run(&config, command);
    }
    init_logging(config.log_level);

    // Register for signals before starting, so none slips through between.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(signal) = signals.forever().next() {
        log::info!("received signal {signal}; shutting down");
    }
    server.shutdown();
    ExitCode::SUCCESS
}

/// Argon2 allocates 19 MiB for every password it hashes. After such a block
/// is freed, glibc raises its mmap threshold and serves the next ones from
/// per-thread arenas, which keep the memory: 40 registrations took the
/// process from 8 MiB to 282 MiB resident. A fixed threshold keeps large
/// blocks on mmap, returned to the system as soon as they are freed.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

fn init_logging(level: log::LevelFilter) {
    let config = simplelog::ConfigBuilder::new()
        // tungstenite logs frame contents at trace level: message bodies
        // must never reach the logs.
        .add_filter_ignore_str("tungstenite")
        .build();
    // Colours only on a terminal: escape codes make log files unreadable.
    let colours = if std::io::stderr().is_terminal() {
        simplelog::ColorChoice::Auto
    } else {
        simplelog::ColorChoice::Never
    };
    let _ = simplelog::TermLogger::init(level, config, simplelog::TerminalMode::Stderr, colours);
}
