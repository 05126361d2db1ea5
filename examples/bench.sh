#!/usr/bin/env bash
# Runs the load-generator scenarios of docs/BENCHMARKS.md, each RUNS times
# against a fresh release server, and keeps every report in $OUT.
#   examples/bench.sh                 # everything
#   examples/bench.sh pairs-normal    # one scenario
#   examples/bench.sh soak            # the 10-minute soak (not in "everything")
#   SERVER_BIN=/other/chat-server examples/bench.sh pairs-normal   # another build, same run
# "history" seeds a 10 M-message database once (~2 minutes) and keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
OUT=${OUT:-target/bench}
PORT=${PORT:-18600}
mkdir -p "$OUT"
cargo build -q --release --bin chat-server --example loadgen --example sqlite_baseline --example relay_baseline --example seed_db --example sync_catchup --example web_render --example file_bench --example expiry_sweep --example push_bench
# SERVER_CPUS / LOADGEN_CPUS pin the server and the generator to separate
# cores (`taskset -c`), for the per-core figure.
pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
# (For the generator, in the foreground; the server is pinned in run().)

run() { # name, server flags, loadgen arguments...
  local name=$1 flags=$2; shift 2
  # One database per scenario: its runs reuse the users and their sessions.
  # With DB_KEY, scenarios share $OUT/db-$DB_KEY and it is kept: the idle
  # and storm runs need the same 10,000 users (registering them with Argon2
  # takes minutes) and write no messages. With DB_FILE, the server runs on
  # that file instead (a seeded database).
  local db
  if [ -n "${DB_KEY:-}" ]; then db="$OUT/db-$DB_KEY"; mkdir -p "$db"; else db=$(mktemp -d); fi
  for i in $(seq "$RUNS"); do
    # Earlier runs leave up to gigabytes of dirty pages (databases, logs);
    # written back during this run, they would slow its fsyncs.
    sync
    # shellcheck disable=SC2086
    local launcher=()
    [ -z "${SERVER_CPUS:-}" ] || launcher=(taskset -c "$SERVER_CPUS") # execs the server: $! stays its pid
    "${launcher[@]}" "${SERVER_BIN:-target/release/chat-server}" --addr 127.0.0.1:$PORT --db "${DB_FILE:-$db/chat.db}" --log-level warn \
      --message-rate 0 --login-rate 0 --register-rate 0 --registration open --max-connections 20000 $flags 2>"$OUT/$name.$i.server.log" &
    local pid=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    # With BACKGROUND, another load beside the generator (given the
    # server's URL), started first and waited for after.
    local background=""
    if [ -n "${BACKGROUND:-}" ]; then
      # shellcheck disable=SC2086
      $BACKGROUND --server "http://127.0.0.1:$PORT" >"$OUT/$name.$i.background" 2>&1 &
      background=$!
    fi
    # The generator, or with CLIENT another program (given the server's URL).
    if [ -n "${CLIENT:-}" ]; then
      # shellcheck disable=SC2086
      $CLIENT --server "http://127.0.0.1:$PORT" "$@"
    else
      pin "${LOADGEN_CPUS:-}" target/release/examples/loadgen --server "http://127.0.0.1:$PORT" \
        --server-pid $pid --sessions "$db/sessions" "$@"
    fi >"$OUT/$name.$i.txt" 2>"$OUT/$name.$i.progress" || echo "run $name.$i failed"
    [ -z "$background" ] || wait "$background" || echo "background of $name.$i failed"
    kill $pid; wait $pid 2>/dev/null || true
    echo "== $name run $i"; cat "$OUT/$name.$i.txt"
    [ -z "$background" ] || cat "$OUT/$name.$i.background"
  done
  [ -n "${DB_KEY:-}" ] || rm -rf "$db"
}

relay() { # name, loadgen arguments... : baseline (a), same runs against the bare relay
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    sync # as in run()
    target/release/examples/relay_baseline --addr 127.0.0.1:$PORT 2>/dev/null &
    local pid=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    target/release/examples/loadgen --relay 127.0.0.1:$PORT --server-pid $pid "$@" \
      >"$OUT/$name.$i.txt" 2>"$OUT/$name.$i.progress" || echo "run $name.$i failed"
    kill $pid; wait $pid 2>/dev/null || true
    echo "== $name run $i"; cat "$OUT/$name.$i.txt"
  done
}

all=("$@")
sel() { [ ${#all[@]} -eq 0 ] || [[ " ${all[*]} " == *" $1 "* ]]; }

sel pairs-normal && run pairs-normal "" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4
sel pairs-full && run pairs-full "--durability full" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4
sel latency-10k && run latency-10k "" pairs --users 1000 --rate 10000 --seconds "$SECONDS_PER_RUN"
sel relay-pairs && relay relay-pairs pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4
sel relay-latency-10k && relay relay-latency-10k pairs --users 1000 --rate 10000 --seconds "$SECONDS_PER_RUN"
for rate in 2000 5000; do
  sel "relay-latency-$rate" && relay "relay-latency-$rate" pairs --users 1000 --rate $rate --seconds "$SECONDS_PER_RUN"
done
# Per core: the server on core 0, the generator on core 1.
sel percore && SERVER_CPUS=0 LOADGEN_CPUS=1 run percore "" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4
# A client that missed 10,000 changes catches up over the WebSocket.
sel catchup && RUNS=1 CLIENT=target/release/examples/sync_catchup run catchup "" --changes 10000 --runs 5
# Throughput against how many sends each user keeps unanswered (4 above).
for window in 16 64; do
  sel "window-$window" && run "pairs-normal-w$window" "" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window $window
  sel "window-$window" && relay "relay-pairs-w$window" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window $window
done
sel sqlite-baseline && target/release/examples/sqlite_baseline --messages 200000 | tee "$OUT/sqlite-baseline.txt"
for rate in 1000 2000 2500 5000 7500; do
  sel "latency-$rate" && run "latency-$rate" "" pairs --users 1000 --rate $rate --seconds "$SECONDS_PER_RUN"
done
sel idle && DB_KEY=many run idle "" idle --users "${IDLE_USERS:-10000}" --seconds 60
sel storm && RUNS=${STORM_RUNS:-5} DB_KEY=many run storm "" storm --users "${STORM_USERS:-10000}"
sel storm-per-user && RUNS=${STORM_RUNS:-5} DB_KEY=many run storm-per-user "" --per-user-presence storm --users "${STORM_USERS:-10000}"
if sel history; then
  seeded="$OUT/seeded.db"
  [ -f "$seeded" ] || target/release/examples/seed_db --db "$seeded" --queries 0
  for clients in 1 4; do
    DB_FILE=$seeded run "history-$clients" "" history --clients $clients --seconds "$SECONDS_PER_RUN"
  done
fi
# What the search index costs a send: the same closed loop, messages of 12
# words of text, without and with the index, alternating.
if sel search-cost; then
  for round in $(seq "$RUNS"); do # (run() uses $i)
    RUNS=1 run "search-off-$round" "--search off" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4 --words 12
    RUNS=1 run "search-on-$round" "" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4 --words 12
    # And what it costs a message's latency at a rate a busy server sees.
    RUNS=1 run "search-off-2000-$round" "--search off" pairs --users 1000 --rate 2000 --seconds "$SECONDS_PER_RUN" --words 12
    RUNS=1 run "search-on-2000-$round" "" pairs --users 1000 --rate 2000 --seconds "$SECONDS_PER_RUN" --words 12
  done
fi
# The expiry sweep: a million messages fall due while 1,000 users send
# 1,000 msg/s, against the same run where none do. One seeded database (a
# million messages, its search index built, the generator's users
# registered) is copied for every run; `expiry_sweep watch` reads the
# server's /metrics for when the sweep started and ended.
if sel expiry-sweep; then
  seed="$OUT/expiry-seed.db"
  export DB_KEY=expiry DB_FILE="$OUT/expiry.db"
  if [ ! -f "$seed" ]; then
    rm -f "$DB_FILE" "$DB_FILE"-*
    target/release/examples/seed_db --db "$DB_FILE" --users 2000 --messages 1000000 --queries 10 >/dev/null
    RUNS=1 run expiry-register "" pairs --users 1000 --rate 100 --seconds 1 >/dev/null
    cp "$DB_FILE" "$seed" && cp "$DB_FILE-search" "$seed-search"
  fi
  for round in $(seq "$RUNS"); do
    for mode in without with; do
      rm -f "$DB_FILE" "$DB_FILE"-*
      cp "$seed" "$DB_FILE" && cp "$seed-search" "$DB_FILE-search"
      if [ $mode = with ]; then
        due=$(target/release/examples/expiry_sweep due --db "$DB_FILE" --in-seconds 5 | cut -d' ' -f1)
        export BACKGROUND="target/release/examples/expiry_sweep watch --seconds $SECONDS_PER_RUN --expect $due"
      fi
      RUNS=1 run "expiry-$mode-$round" "" pairs --users 1000 --rate 1000 --seconds "$SECONDS_PER_RUN"
      unset BACKGROUND
    done
  done
  rm -f "$DB_FILE" "$DB_FILE"-*
  unset DB_KEY DB_FILE
fi
# Push: 100 senders send 1,000 msg/s to 100 recipients who are never
# connected, with and without a push subscription each (a push service in
# push_bench, on loopback). Coalescing over 5 s, so that pushes go on
# through the run (20/s; the default 60 s would push once per recipient,
# in the first second). "push" starts the senders together, so that the
# recipients' windows all end together (a burst of 100 pushes every 5 s);
# "push-staggered" starts them over 5 s, as people would. Then every
# message pushed (--push-coalesce 0s, "push-every"), for pushes per second.
for variant in push push-staggered; do
  sel $variant || continue
  stagger=0; [ $variant = push-staggered ] && stagger=5
  for round in $(seq "$RUNS"); do
    for mode in without with; do
      subscribe=""; [ $mode = with ] && subscribe="--subscribe"
      CLIENT=target/release/examples/push_bench RUNS=1 run "$variant-$mode-$round" "--push-allow-private-endpoints --push-coalesce 5s" \
        --pairs 100 --rate 1000 --seconds "$SECONDS_PER_RUN" --stagger "$stagger" $subscribe
    done
  done
done
if sel push-every; then
  for rate in 1000 2000; do
    CLIENT=target/release/examples/push_bench RUNS=1 run "push-every-$rate" "--push-allow-private-endpoints --push-coalesce 0s" \
      --pairs 100 --rate "$rate" --seconds "$SECONDS_PER_RUN" --subscribe
  done
fi
# Typing at scale: messages at 5,000/s open loop, without and with 1,000
# users typing (a start or a stop each second), same session.
sel typing && run typing-off "" pairs --users 1000 --rate 5000 --seconds "$SECONDS_PER_RUN"
sel typing && run typing-on "" pairs --users 1000 --rate 5000 --seconds "$SECONDS_PER_RUN" --typing-users 1000
# Reactions and edits are changes like messages: the same closed loop.
for kind in message react edit; do
  sel actions && run "actions-$kind" "" pairs --users 1000 --seconds "$SECONDS_PER_RUN" --window 4 --kind $kind
done
# Files: upload and download throughput against nginx, thumbnails, and
# message latency at 1,000 msg/s without and with 8 uploads running.
{ sel files || sel files-transfer; } && target/release/examples/file_bench transfer --runs "$RUNS" | tee "$OUT/files-transfer.txt"
{ sel files || sel files-thumbnail; } && target/release/examples/file_bench thumbnail --runs 30 | tee "$OUT/files-thumbnail.txt"
# (Uploads as fast as loopback takes them, and at 2 MiB/s per uploader.)
# One database for all of them: the users are registered once, in the
# first run "alone", never while uploads run.
export DB_KEY=files-latency
{ sel files || sel files-latency; } && run files-latency-alone "" pairs --users 1000 --rate 1000 --seconds "$SECONDS_PER_RUN"
for pace in 0 2; do
  { sel files || sel files-latency; } && BACKGROUND="target/release/examples/file_bench uploads --seconds $((SECONDS_PER_RUN + 2)) --mib-per-second $pace" \
    run "files-latency-uploads-$pace" "--upload-quota 1000GiB" pairs --users 1000 --rate 1000 --seconds "$SECONDS_PER_RUN"
  # The baseline: the same uploads to an nginx beside the server.
  { sel files || sel files-latency; } && BACKGROUND="target/release/examples/file_bench uploads --seconds $((SECONDS_PER_RUN + 2)) --mib-per-second $pace --nginx-bin ${NGINX:-/usr/sbin/nginx}" \
    run "files-latency-nginx-uploads-$pace" "" pairs --users 1000 --rate 1000 --seconds "$SECONDS_PER_RUN"
done
rm -rf "$OUT/db-files-latency"
unset DB_KEY
# The web client with a long conversation, in Chromium (not in "everything").
[[ " ${all[*]} " == *" web-render "* ]] && cargo run -q --release --example web_render -- --messages 5000 | tee "$OUT/web-render.txt"
# Not in the default set: ten minutes, once.
[[ " ${all[*]} " == *" soak "* ]] && RUNS=1 run soak "" pairs --users 1000 --rate 5000 --seconds 600
exit 0
