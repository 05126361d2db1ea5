//! File benchmarks of docs/BENCHMARKS.md (issue 15).
//!
//! ```text
//! cargo build --release --bin chat-server --example file_bench
//! target/release/examples/file_bench transfer      # chat-server and nginx, same files, same run
//! target/release/examples/file_bench thumbnail     # a 12-megapixel JPEG, made ready to store
//! target/release/examples/file_bench uploads --server http://127.0.0.1:18600 --seconds 30
//! ```
//!
//! - `transfer`: 8 clients upload files of 1 MiB and of 25 MiB (each one
//!   different, so that none is stored once for two) and download them,
//!   first to a fresh chat-server (release binary, its own database), then
//!   to nginx on the same box (WebDAV `PUT` to store, static `GET` to
//!   serve): the baseline. Throughput over all clients, and per-request
//!   p50/p99.
//! - `thumbnail`: what an uploaded photo costs: metadata removed and a
//!   thumbnail made (`files::image::prepare`), against decoding alone.
//! - `uploads`: 8 clients uploading 1 MiB files in a loop for a while,
//!   as fast as they can or at a pace, to the server or (the baseline) to
//!   an nginx on the same box, as background load (bench.sh runs it
//!   beside loadgen at 1,000 msg/s).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "File upload, download and thumbnail benchmarks")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Upload and download throughput, chat-server against nginx.
    Transfer {
        /// The chat-server binary.
        #[arg(long, default_value = "target/release/chat-server")]
        server_bin: PathBuf,
        #[arg(long, default_value = "/usr/sbin/nginx")]
        nginx: PathBuf,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Rounds of each measurement; the report gives each and the median.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 18700)]
        port: u16,
    },
    /// Time to prepare a 12-megapixel JPEG for storing.
    Thumbnail {
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// Background uploads against a running server.
    Uploads {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Each client's pace, in MiB/s (1 MiB files); 0: as fast as the
        /// server takes them.
        #[arg(long, default_value_t = 0.0)]
        mib_per_second: f64,
        /// Upload to a fresh nginx (this binary) instead of the server: the
        /// same load on the box, the baseline for what it does to the
        /// server's messages.
        #[arg(long)]
        nginx_bin: Option<PathBuf>,
        #[arg(long, default_value_t = 18790)]
        nginx_port: u16,
    },
}

const MIB: usize = 1 << 20;
/// Files per client for each size: about 16 MiB, and 50 MiB, per client.
const SIZES: &[(usize, usize)] = &[(MIB, 16), (25 * MIB, 2)];

fn main() {
    let args = Args::parse();
    match args.scenario {
        Scenario::Transfer {
            server_bin,
            nginx,
            clients,
            runs,
            port,
        } => transfer(&server_bin, &nginx, clients, runs, port),
        Scenario::Thumbnail { runs } => thumbnail(runs),
        Scenario::Uploads {
            server,
            clients,
            seconds,
            mib_per_second,
            nginx_bin,
            nginx_port,
        } => {
            let dir = tempfile::tempdir().expect("temp dir");
            let nginx = nginx_bin.map(|bin| Nginx::start(&bin, dir.path(), nginx_port));
            let target = match &nginx {
                Some(nginx) => Target::Nginx {
                    base: nginx.base.clone(),
                },
                None => Target::Chat {
                    cookies: (0..clients)
                        .map(|i| login_or_register(&server, &format!("up{i}")))
                        .collect(),
                    base: server,
                },
            };
            background_uploads(&target, clients, seconds, mib_per_second);
        }
    }
}

/// Where files go and come from: the chat server (with each client's
/// session) or nginx.
#[derive(Clone)]
enum Target {
    Chat { base: String, cookies: Vec<String> },
    Nginx { base: String },
}

impl Target {
    /// Stores `body`; returns where to download it.
    fn upload(&self, client: usize, n: usize, body: &[u8]) -> String {
        match self {
            Target::Chat { base, cookies } => {
                let response = ureq::post(&format!("{base}/api/attachments"))
                    .query("name", &format!("file-{client}-{n}.bin"))
                    .set("Cookie", &cookies[client])
                    .send_bytes(body)
                    .unwrap_or_else(|e| panic!("upload to chat-server: {e}"));
                let stored: Value = response.into_json().expect("JSON");
                let id = stored["attachment"]["id"].as_i64().expect("id");
                format!("{base}/api/attachments/{id}")
            }
            Target::Nginx { base } => {
                let url = format!("{base}/files/file-{client}-{n}.bin");
                ureq::put(&url)
                    .send_bytes(body)
                    .unwrap_or_else(|e| panic!("upload to nginx: {e}"));
                url
            }
        }
    }

    /// Downloads `url` to nowhere; returns the bytes read.
    fn download(&self, client: usize, url: &str) -> u64 {
        let mut request = ureq::get(url);
        if let Target::Chat { cookies, .. } = self {
            request = request.set("Cookie", &cookies[client]);
        }
        let response = request.call().unwrap_or_else(|e| panic!("download: {e}"));
        std::io::copy(&mut response.into_reader(), &mut std::io::sink()).expect("read body")
    }
}

/// One round: every client uploads `count` files of `size` bytes, then
/// every client downloads its own files. Returns (upload MiB/s, download
/// MiB/s, upload latencies, download latencies).
fn round(
    target: &Target,
    clients: usize,
    size: usize,
    count: usize,
    round: usize,
) -> (f64, f64, Histogram<u64>, Histogram<u64>) {
    let up_latency = Mutex::new(histogram());
    let down_latency = Mutex::new(histogram());
    let urls: Mutex<Vec<Vec<String>>> = Mutex::new(vec![Vec::new(); clients]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (urls, up_latency) = (&urls, &up_latency);
            scope.spawn(move || {
                let mut body = pattern(size, client);
                for n in 0..count {
                    // Each file differs: none is stored once for two.
                    body[..16].copy_from_slice(&unique(round, client, n));
                    let t = Instant::now();
                    let url = target.upload(client, n, &body);
                    record(up_latency, t.elapsed());
                    lock(urls)[client].push(url);
                }
            });
        }
    });
    let uploaded = started.elapsed();
    let urls = urls.into_inner().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (client, urls) in urls.iter().enumerate() {
            let down_latency = &down_latency;
            scope.spawn(move || {
                for url in urls {
                    let t = Instant::now();
                    let read = target.download(client, url);
                    assert_eq!(read, size as u64, "a whole file comes back");
                    record(down_latency, t.elapsed());
                }
            });
        }
    });
    let downloaded = started.elapsed();
    let mib = (clients * count * size) as f64 / MIB as f64;
    (
        mib / uploaded.as_secs_f64(),
        mib / downloaded.as_secs_f64(),
        up_latency.into_inner().unwrap_or_else(|p| p.into_inner()),
        down_latency.into_inner().unwrap_or_else(|p| p.into_inner()),
    )
}

fn transfer(server_bin: &Path, nginx: &Path, clients: usize, runs: usize, port: u16) {
    let dir = tempfile::tempdir().expect("temp dir");
    println!("# file transfer: {clients} clients, {runs} runs per figure, loopback");
    let mut chat = ChatServer::start(server_bin, dir.path(), port);
    let cookies = (0..clients).map(|i| chat.user(&format!("fb{i}"))).collect();
    let chat_target = Target::Chat {
        base: chat.base.clone(),
        cookies,
    };
    let nginx_server = Nginx::start(nginx, dir.path(), port + 2);
    let nginx_target = Target::Nginx {
        base: nginx_server.base.clone(),
    };
    println!(
        "{:<8} {:<12} {:>12} {:>12} {:>22} {:>22}",
        "size",
        "server",
        "upload MiB/s",
        "download MiB/s",
        "upload p50/p99 ms",
        "download p50/p99 ms"
    );
    for &(size, count) in SIZES {
        let mut medians = Vec::new();
        for (name, target) in [("chat", &chat_target), ("nginx", &nginx_target)] {
            let mut ups = Vec::new();
            let mut downs = Vec::new();
            let mut up_all = histogram();
            let mut down_all = histogram();
            for run in 0..runs {
                let (up, down, up_latency, down_latency) = round(target, clients, size, count, run);
                ups.push(up);
                downs.push(down);
                up_all.add(&up_latency).expect("merge");
                down_all.add(&down_latency).expect("merge");
            }
            let (up, down) = (median(&mut ups), median(&mut downs));
            println!(
                "{:<8} {:<12} {:>12.1} {:>12.1} {:>22} {:>22}   runs (sorted) up {} down {}",
                format!("{} MiB", size / MIB),
                name,
                up,
                down,
                p50_p99(&up_all),
                p50_p99(&down_all),
                list(&ups),
                list(&downs),
            );
            medians.push((up, down));
        }
        let (chat_median, nginx_median) = (medians[0], medians[1]);
        println!(
            "{:<8} {:<12} {:>12.2} {:>12.2}   (chat-server / nginx, medians)",
            format!("{} MiB", size / MIB),
            "ratio",
            chat_median.0 / nginx_median.0,
            chat_median.1 / nginx_median.1
        );
    }
    chat.stop();
}

fn thumbnail(runs: usize) {
    use chat_server::files::image::prepare;
    // A 12-megapixel photo: 4000 x 3000, a gradient with noise so that it
    // compresses like a photo, at quality 90.
    let photo = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23;
        image::Rgb([
            ((x / 16 + noise) % 256) as u8,
            ((y / 12 + noise) % 256) as u8,
            (((x + y) / 28) % 256) as u8,
        ])
    });
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    photo.write_with_encoder(encoder).expect("encode");
    println!(
        "# thumbnail of a 12-megapixel JPEG (4000x3000, {:.1} MiB), {runs} runs, one thread",
        jpeg.len() as f64 / MIB as f64
    );
    let mut prepared = histogram();
    let mut decoded = histogram();
    for _ in 0..runs {
        let t = Instant::now();
        let image = image::load_from_memory(&jpeg).expect("decode");
        record_into(&mut decoded, t.elapsed());
        drop(image);
        let t = Instant::now();
        let ready = prepare(jpeg.clone(), "image/jpeg", false).expect("prepare");
        record_into(&mut prepared, t.elapsed());
        assert_eq!(ready.size, (4000, 3000));
    }
    println!(
        "decode only (baseline)      p50/p99 ms {}",
        p50_p99(&decoded)
    );
    println!(
        "strip + decode + thumbnail  p50/p99 ms {}",
        p50_p99(&prepared)
    );
    println!(
        "ratio (p50)                 {:.2}",
        prepared.value_at_quantile(0.5) as f64 / decoded.value_at_quantile(0.5) as f64
    );
}

fn background_uploads(target: &Target, clients: usize, seconds: u64, mib_per_second: f64) {
    // Files of another run (same database) are different files too.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as usize);
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    // The time one 1 MiB upload may take at the pace asked for.
    let interval = (mib_per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / mib_per_second));
    let latency = Mutex::new(histogram());
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (latency, done) = (&latency, &done);
            scope.spawn(move || {
                let mut body = pattern(MIB, client);
                let mut n = 0;
                while Instant::now() < until {
                    body[..16].copy_from_slice(&unique(run, client, n));
                    let t = Instant::now();
                    target.upload(client, n, &body);
                    record(latency, t.elapsed());
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    n += 1;
                    if let Some(interval) = interval {
                        let next = started + interval * n as u32;
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                }
            });
        }
    });
    let uploads = done.into_inner();
    let pace = match interval {
        Some(_) => format!("paced at {mib_per_second} MiB/s each"),
        None => "unpaced".into(),
    };
    let to = match target {
        Target::Chat { .. } => "the server",
        Target::Nginx { .. } => "nginx",
    };
    println!(
        "# background uploads to {to}: {clients} clients ({pace}), {uploads} uploads of 1 MiB in {seconds} s \
         ({:.1} MiB/s), p50/p99 ms {}",
        uploads as f64 / seconds as f64,
        p50_p99(&latency.into_inner().unwrap_or_else(|p| p.into_inner()))
    );
}

/// A chat-server process on its own database.
struct ChatServer {
    child: Child,
    base: String,
}

impl ChatServer {
    fn start(bin: &Path, dir: &Path, port: u16) -> ChatServer {
        let child = Command::new(bin)
            .args([
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "warn",
            ])
            .args([
                "--message-rate",
                "0",
                "--login-rate",
                "0",
                "--register-rate",
                "0",
                "--registration",
                "open",
            ])
            .arg("--db")
            .arg(dir.join("chat.db"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e} (build it with --release)", bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        await_up(&format!("{base}/healthz"));
        ChatServer { child, base }
    }

    fn user(&mut self, nickname: &str) -> String {
        login_or_register(&self.base, nickname)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx storing files by WebDAV `PUT` and serving them statically.
struct Nginx {
    child: Child,
    base: String,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path, port: u16) -> Nginx {
        let root = dir.join("nginx");
        for sub in ["www/files", "tmp", "logs"] {
            std::fs::create_dir_all(root.join(sub)).expect("nginx folders");
        }
        let conf = root.join("nginx.conf");
        let r = root.display();
        let text = format!(
            "daemon off; worker_processes auto; pid {r}/nginx.pid; error_log {r}/logs/error.log;
             user root;
             events {{ worker_connections 1024; }}
             http {{
               access_log off; sendfile on;
               client_body_temp_path {r}/tmp; client_max_body_size 30m;
               server {{
                 listen 127.0.0.1:{port};
                 root {r}/www;
                 location /files/ {{ dav_methods PUT; create_full_put_path on; }}
               }}
             }}"
        );
        std::fs::File::create(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("nginx.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        await_up(&format!("{base}/"));
        Nginx { child, base }
    }
}

impl Drop for Nginx {
    /// A fast shutdown (SIGTERM): the master stops its workers too, which
    /// SIGKILL would leave running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn await_up(url: &str) {
    for _ in 0..100 {
        match ureq::get(url).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => return,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!("{url} did not come up");
}

fn login_or_register(base: &str, nickname: &str) -> String {
    let _ = ureq::post(&format!("{base}/api/register")).send_json(json!({
        "nickname": nickname, "email": format!("{nickname}@bench"), "password": "password123"
    }));
    let response = ureq::post(&format!("{base}/api/login"))
        .send_json(json!({"identifier": nickname, "password": "password123"}))
        .expect("log in");
    let cookie = response
        .header("Set-Cookie")
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    let mut sink = Vec::new();
    let _ = response.into_reader().read_to_end(&mut sink);
    cookie
}

/// A file's bytes: not all equal, so that nothing along the way can
/// shortcut them.
fn pattern(size: usize, seed: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) >> 3) as u8)
        .collect()
}

fn unique(round: usize, client: usize, n: usize) -> [u8; 16] {
    let mut tag = [0u8; 16];
    tag[..8].copy_from_slice(&(round as u64).to_le_bytes());
    tag[8..12].copy_from_slice(&(client as u32).to_le_bytes());
    tag[12..].copy_from_slice(&(n as u32).to_le_bytes());
    tag
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn record(histogram: &Mutex<Histogram<u64>>, elapsed: Duration) {
    record_into(&mut lock(histogram), elapsed);
}

fn record_into(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let _ = histogram.record(micros.min(histogram.high()));
}

fn p50_p99(histogram: &Histogram<u64>) -> String {
    format!(
        "{:.1}/{:.1}",
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(",")
}
