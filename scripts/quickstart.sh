#!/usr/bin/env bash
# Tidemark's quick start: one command from a fresh clone to a running replication you can watch.
#   1. installs and starts what is missing (scripts/services.sh: etcd, an upstream MariaDB with its binlog, a
#      downstream MariaDB), installs the node modules and builds when needed;
#   2. starts one cdc server (cluster "quickstart", its API on 127.0.0.1:<port>);
#   3. creates the demo database `tidemark_demo` upstream (customers and orders, some thousands of rows) and a small
#      live workload on it (inserts, updates, deletes a few times a second);
#   4. creates the changefeed `demo` into the downstream with `--snapshot initial`: the tables and their existing
#      rows are copied, then every change streams;
#   5. opens `cdc top` (q quits it). Ctrl-C (or quitting top) stops what this script started, services included
#      (services that were running before are left running).
#
# usage: scripts/quickstart.sh [--port N] [--rows N] [--no-tui]
#   --port    the cdc server's API port (default 8300)
#   --rows    demo orders copied by the snapshot (default 50000)
#   --no-tui  print the downstream's row counts every 2 s instead of opening cdc top (for scripts and tests)
# The services' addresses come from the variables scripts/services.sh reads (TIDEMARK_UPSTREAM_ADDR, …).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PORT=8300
ROWS=50000
TUI=1
while (($#)); do
  case $1 in
    --port) PORT=${2:?--port needs a value}; shift 2 ;;
    --rows) ROWS=${2:?--rows needs a value}; shift 2 ;;
    --no-tui) TUI=0; shift ;;
    -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'quickstart: unknown argument "%s"; allowed: --port N, --rows N, --no-tui, --help\n' "$1" >&2; exit 2 ;;
  esac
done
[[ $PORT =~ ^[0-9]+$ ]] && ((PORT > 0 && PORT < 65536)) || { printf 'quickstart: --port "%s" is not a TCP port (1-65535)\n' "$PORT" >&2; exit 2; }
[[ $ROWS =~ ^[0-9]+$ ]] && ((ROWS >= 1 && ROWS <= 10000000)) || { printf 'quickstart: --rows "%s" must be a whole number from 1 to 10000000\n' "$ROWS" >&2; exit 2; }

say() { printf '\033[1m[quickstart]\033[0m %s\n' "$*"; }
die() { printf '[quickstart] error: %s\n' "$*" >&2; exit 1; }

eval "$(bash scripts/services.sh env)"
DIR=${TIDEMARK_SERVICES_DIR:-$ROOT/.services}
UP=$TIDEMARK_UPSTREAM_ADDR
DOWN=$TIDEMARK_DOWNSTREAM_ADDR
API="http://127.0.0.1:$PORT"
sql() { local addr=$1; shift; mariadb --protocol=TCP -h "${addr%:*}" -P "${addr##*:}" -u root --batch --skip-column-names "$@"; }

started=()
node_pid=''
load_pid=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e # clean up everything, whatever fails on the way
  [[ -n $load_pid ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  if [[ -n $node_pid ]] && kill -0 "$node_pid" 2>/dev/null; then
    say "stopping the cdc server"
    kill -TERM "$node_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$node_pid" 2>/dev/null || true
  fi
  if ((${#started[@]})); then
    say "stopping the services this script started: ${started[*]}"
    bash scripts/services.sh down "${started[@]}" || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. services, modules, build
for service in etcd upstream downstream; do
  bash scripts/services.sh status "$service" >/dev/null 2>&1 || started+=("$service")
done
((${#started[@]})) && say "starting ${started[*]} (scripts/services.sh; the first time installs them with apt)"
bash scripts/services.sh up etcd upstream downstream
if [[ ! -d node_modules ]]; then say "npm ci"; npm ci --no-audit --no-fund --loglevel=error; fi
if [[ ! -f dist/index.js ]] || [[ -n $(find src plugins/*/src -newer dist/index.js -name '*.ts' -print -quit 2>/dev/null) ]]; then
  say "building"
  npm run build >/dev/null
fi

# ---- 2. one cdc server
if curl -fsS "$API/api/v2/status" >/dev/null 2>&1; then
  die "something already answers on $API (a cdc server?); stop it, or choose another port with --port"
fi
mkdir -p "$DIR"
say "starting a cdc server on $API (log: $DIR/quickstart-node.log)"
setsid ./bin/run.js server --pd "http://$TIDEMARK_ETCD_ADDR" --addr "127.0.0.1:$PORT" --cluster-id quickstart \
  --data-dir "$DIR/quickstart-node" --upstream "mysql://root@$UP" >"$DIR/quickstart-node.log" 2>&1 </dev/null &
node_pid=$!
for i in $(seq 1 300); do
  curl -fsS "$API/api/v2/status" >/dev/null 2>&1 && break
  kill -0 "$node_pid" 2>/dev/null || { tail -n 20 "$DIR/quickstart-node.log" >&2; die "the cdc server exited; its log is above"; }
  ((i < 300)) || die "the cdc server did not answer on $API within 30 s; see $DIR/quickstart-node.log"
  sleep 0.1
done

# ---- 3. the demo database and its live workload (a previous run's demo is replaced)
./bin/run.js changefeed remove -c demo --server "$API" >/dev/null 2>&1 || true
say "creating tidemark_demo upstream: 500 customers, $ROWS orders"
sql "$DOWN" -e 'DROP DATABASE IF EXISTS tidemark_demo'
sql "$UP" <<SQL
DROP DATABASE IF EXISTS tidemark_demo;
CREATE DATABASE tidemark_demo;
USE tidemark_demo;
CREATE TABLE tidemark_demo.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128), created_at DATETIME(3) NOT NULL);
CREATE TABLE tidemark_demo.orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2) NOT NULL, status ENUM('new','paid','shipped') NOT NULL, note TEXT, KEY (customer_id));
INSERT INTO tidemark_demo.customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), NOW(3) FROM seq_1_to_500;
INSERT INTO tidemark_demo.orders SELECT seq, 1 + seq % 500, ROUND(5 + (seq * 7919 % 10000) / 100, 2), ELT(1 + seq % 3, 'new', 'paid', 'shipped'), NULL FROM seq_1_to_$ROWS;
SQL
(
  id=$((ROWS + 1))
  while :; do
    sql "$UP" -e "INSERT INTO tidemark_demo.orders VALUES ($id, 1 + $id % 500, 42.00, 'new', 'live');
      UPDATE tidemark_demo.orders SET status = 'paid' WHERE id = $((id - 3));
      DELETE FROM tidemark_demo.orders WHERE id = $((id % ROWS + 1));" 2>/dev/null || true
    id=$((id + 1))
    sleep 0.2
  done
) &
load_pid=$!

# ---- 4. the changefeed, existing rows included
config="$DIR/quickstart-changefeed.toml"
printf '[filter]\nrules = ["tidemark_demo.*"]\n' >"$config"
say "creating changefeed demo: mysql://root@$UP -> mysql://root@$DOWN, --snapshot initial"
./bin/run.js changefeed create -c demo --server "$API" --upstream "mysql://root@$UP" \
  --sink-uri "mysql://root@$DOWN/" --snapshot initial --config "$config" >/dev/null

# ---- 5. watch it
say "replicating; try: mariadb -h ${UP%:*} -P ${UP##*:} -u root -e \"UPDATE tidemark_demo.customers SET name = 'me' WHERE id = 1\""
say "compare both sides: ./bin/run.js diff --upstream mysql://root@$UP --downstream mysql://root@$DOWN --tables 'tidemark_demo.*'"
if ((TUI)); then
  ./bin/run.js top --server "$API" || true
else
  say "Ctrl-C stops what this script started"
  while :; do
    counts=$(sql "$DOWN" -e "SELECT (SELECT COUNT(*) FROM tidemark_demo.customers), (SELECT COUNT(*) FROM tidemark_demo.orders), (SELECT COUNT(*) FROM tidemark_demo.orders WHERE note = 'live')" 2>/dev/null || true)
    if [[ -n $counts ]]; then
      read -r customers orders live <<<"$counts"
      say "downstream: $customers customers, $orders orders ($live written by the live workload)"
    else
      say "downstream: tables not created yet"
    fi
    sleep 2
  done
fi
