//! `GET /metrics`: counters, gauges and histograms in the Prometheus text
//! format, from plain atomics (no locks on the hot paths).
//!
//! Each part of the server owns its numbers: the hub its connections and
//! deliveries ([`Metrics`], shared through [`crate::app::App`]), the store its
//! commits (`Store::render_metrics`). This module has the primitives and
//! the rendering.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Bucket bounds for durations, in seconds: 10 µs to 1 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Bucket bounds for batch sizes.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A Prometheus histogram: cumulative buckets, a sum and a count.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    /// The sum, in millionths of the unit (integers add atomically).
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

pub fn render_counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

pub fn render_gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// Why a send was answered with `message_failed` (the codes of the
/// protocol), for the failures-by-reason counter.
pub const FAILURE_REASONS: &[&str] = &[
    "recipient_offline",
    "invalid",
    "too_long",
    "unknown_recipient",
    "rate_limited",
    "internal_error",
    "invalid_reply",
    "recipient_unavailable",
];

/// The numbers of the chat side of the server.
pub struct Metrics {
    /// Open, registered WebSockets (set by the hub).
    pub connections: AtomicI64,
    /// Users with at least one open WebSocket (set by the hub).
    pub users_online: AtomicI64,
    pub messages_stored: AtomicU64,
    /// Frames of new messages queued to recipients' connections.
    pub messages_delivered: AtomicU64,
    /// Sends answered with `message_failed`, by [`FAILURE_REASONS`] index.
    pub send_failures: Vec<AtomicU64>,
    /// Connections closed because their outbound queue was full.
    pub outbox_drops: AtomicU64,
    /// History and sync requests refused because the query pool was full.
    pub queries_refused: AtomicU64,
    /// Time the hub spends on one event.
    pub hub_event_seconds: Histogram,
    /// Stored files removed because no upload referred to them any more.
    pub files_removed: AtomicU64,
    /// Messages deleted because they were due (timers, `--retention`).
    pub messages_expired: AtomicU64,
    /// Pushes a push service accepted.
    pub pushes_sent: AtomicU64,
    /// Pushes given up: refused, or still failing after every retry.
    pub pushes_failed: AtomicU64,
    /// Pushes dropped because the push queue was full.
    pub pushes_dropped: AtomicU64,
    /// Subscriptions deleted because their push service said they are gone.
    pub push_subscriptions_gone: AtomicU64,
    /// When the server started (`process_start_time_seconds`).
    pub started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: AtomicI64::new(0),
            users_online: AtomicI64::new(0),
            messages_stored: AtomicU64::new(0),
            messages_delivered: AtomicU64::new(0),
            send_failures: FAILURE_REASONS.iter().map(|_| AtomicU64::new(0)).collect(),
            outbox_drops: AtomicU64::new(0),
            queries_refused: AtomicU64::new(0),
            hub_event_seconds: Histogram::new(SECONDS_BUCKETS),
            files_removed: AtomicU64::new(0),
            messages_expired: AtomicU64::new(0),
            pushes_sent: AtomicU64::new(0),
            pushes_failed: AtomicU64::new(0),
            pushes_dropped: AtomicU64::new(0),
            push_subscriptions_gone: AtomicU64::new(0),
            started: SystemTime::now(),
        }
    }
}

impl Metrics {
    pub fn count_failure(&self, reason: &str) {
        if let Some(i) = FAILURE_REASONS.iter().position(|r| *r == reason) {
            self.send_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Renders these numbers plus the hub's queue depth.
    pub fn render(&self, out: &mut String, hub_queue_depth: usize) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        render_gauge(
            out,
            "chat_websocket_connections",
            "Open WebSocket connections.",
            self.connections.load(Ordering::Relaxed),
        );
        render_gauge(
            out,
            "chat_users_online",
            "Users with at least one open WebSocket.",
            self.users_online.load(Ordering::Relaxed),
        );
        render_counter(
            out,
            "chat_messages_stored_total",
            "Messages committed to the database.",
            load(&self.messages_stored),
        );
        render_counter(
            out,
            "chat_messages_delivered_total",
            "Message frames queued to recipient connections.",
            load(&self.messages_delivered),
        );
        let _ = writeln!(
            out,
            "# HELP chat_send_failures_total Sends answered with message_failed, by reason.\n\
             # TYPE chat_send_failures_total counter"
        );
        for (reason, count) in FAILURE_REASONS.iter().zip(&self.send_failures) {
            let _ = writeln!(
                out,
                "chat_send_failures_total{{reason=\"{reason}\"}} {}",
                load(count)
            );
        }
        render_counter(
            out,
            "chat_outbox_drops_total",
            "Connections closed because they did not read (outbound queue full).",
            load(&self.outbox_drops),
        );
        render_counter(
            out,
            "chat_queries_refused_total",
            "WebSocket history and sync requests refused (query pool full; told to retry).",
            load(&self.queries_refused),
        );
        render_counter(
            out,
            "chat_files_removed_total",
            "Stored files removed: unsent for too long, or their message deleted.",
            load(&self.files_removed),
        );
        render_counter(
            out,
            "chat_messages_expired_total",
            "Messages deleted for everyone because they were due (disappearing messages, --retention).",
            load(&self.messages_expired),
        );
        for (name, help, counter) in [
            (
                "chat_pushes_sent_total",
                "Pushes a push service accepted.",
                &self.pushes_sent,
            ),
            (
                "chat_pushes_failed_total",
                "Pushes given up: refused, or failing after every retry.",
                &self.pushes_failed,
            ),
            (
                "chat_pushes_dropped_total",
                "Pushes dropped because the push queue was full (messages are never dropped).",
                &self.pushes_dropped,
            ),
            (
                "chat_push_subscriptions_gone_total",
                "Push subscriptions deleted because their push service answered 404 or 410.",
                &self.push_subscriptions_gone,
            ),
        ] {
            render_counter(out, name, help, load(counter));
        }
        render_gauge(
            out,
            "chat_hub_queue_depth",
            "Events waiting for the hub.",
            i64::try_from(hub_queue_depth).unwrap_or(i64::MAX),
        );
        self.hub_event_seconds.render(
            out,
            "chat_hub_event_seconds",
            "Time the hub spends on one event.",
        );
        let _ = writeln!(
            out,
            "# HELP chat_build_info The version of this server.\n\
             # TYPE chat_build_info gauge\n\
             chat_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        render_process(out, self.started);
    }
}

/// The process's own figures, under the names Prometheus's client
/// libraries use (`process_*`), so that the usual dashboards and alerts
/// work: memory, CPU, file descriptors, threads, start time. Read from
/// `/proc/self`; on a system without it only the start time is given.
fn render_process(out: &mut String, started: SystemTime) {
    let float_metric = |out: &mut String, name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let since_epoch = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    float_metric(
        out,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        since_epoch,
    );
    // /proc/self/stat: the fields after the command name (in parentheses,
    // which may hold spaces) start with field 3, the state.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    // SAFETY: sysconf only reads its integer argument.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if let (Some(user), Some(system), true) = (field(14), field(15), ticks > 0) {
        float_metric(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            (user + system) as f64 / ticks as f64,
        );
    }
    if let (Some(pages), true) = (field(24), page > 0) {
        let bytes = pages.saturating_mul(page.unsigned_abs());
        render_gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size, in bytes.",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        );
    }
    if let Some(threads) = field(20) {
        render_gauge(
            out,
            "process_threads",
            "Threads of the process.",
            i64::try_from(threads).unwrap_or(i64::MAX),
        );
    }
    if let Ok(open) = std::fs::read_dir("/proc/self/fd") {
        // The listing itself holds one descriptor while it is read.
        let count = open.count().saturating_sub(1);
        render_gauge(
            out,
            "process_open_fds",
            "Open file descriptors.",
            i64::try_from(count).unwrap_or(i64::MAX),
        );
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, on this stack frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        render_gauge(
            out,
            "process_max_fds",
            "The most file descriptors the process may open.",
            i64::try_from(limit.rlim_cur).unwrap_or(i64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 55.5\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }
}
