#!/usr/bin/env bash
# Installs (when missing) and runs the real services Tidemark's tests and quick start use, on loopback:
#   etcd        Debian's etcd-server                         TIDEMARK_ETCD_ADDR        (127.0.0.1:2379)
#   upstream    MariaDB with a ROW binlog, CRC32, FULL meta   TIDEMARK_UPSTREAM_ADDR    (127.0.0.1:3307)
#   downstream  MariaDB                                      TIDEMARK_DOWNSTREAM_ADDR  (127.0.0.1:3308)
#   kafka       Apache Kafka, one KRaft broker, jars from Maven Central, the machine's Java
#                                                            TIDEMARK_KAFKA_ADDR       (127.0.0.1:9092)
#               controller on port + 1; a second plaintext listener for fault injection on port + 5 that
#               advertises port + 6 (127.0.0.1:9097 and :9098 by default): a client that bootstraps at port + 6
#               reaches the broker only through what listens there (a test's TCP proxy, which can cut its
#               connections mid-request)
#   prometheus  Debian's prometheus, scraping the targets of <services>/prometheus/targets/*.json (file_sd),
#               evaluating metrics/*.rules.yml and <services>/prometheus/rules/*.yml
#                                                            TIDEMARK_PROMETHEUS_ADDR  (127.0.0.1:9090)
#   upstream-tls, downstream-tls (named only, not started by default): TLS-only MariaDB variants
#               (require_secure_transport=ON; the upstream one with the upstream's binlog settings), certificates
#               from TIDEMARK_TLS_DIR (ca.pem, server-cert.pem, server-key.pem; made with openssl when missing)
#                                                            TIDEMARK_UPSTREAM_TLS_ADDR   (127.0.0.1:3309)
#                                                            TIDEMARK_DOWNSTREAM_TLS_ADDR (127.0.0.1:3310)
#   etcd-tls (named only): etcd serving TLS only, with client certificate authentication (--client-cert-auth), from
#               the same TIDEMARK_TLS_DIR (and client-cert.pem, client-key.pem, made when missing)
#                                                            TIDEMARK_ETCD_TLS_ADDR       (127.0.0.1:2391)
#   kafka-tls (named only): a second one-broker Kafka whose client listener is SASL_SSL only (the certificates of
#               TIDEMARK_TLS_DIR; SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for the user TIDEMARK_KAFKA_TLS_USER with
#               TIDEMARK_KAFKA_TLS_PASSWORD, SCRAM credentials stored at format); clients must show a certificate
#               signed by the CA (TIDEMARK_KAFKA_TLS_CLIENT_AUTH, Kafka's ssl.client.auth: required, the default,
#               requested or none); controller on port + 1 and a loopback plaintext listener for the broker on port + 2
#                                                            TIDEMARK_KAFKA_TLS_ADDR      (127.0.0.1:9094)
# Data, logs and pid files live under TIDEMARK_SERVICES_DIR (default: <repo>/.services).
#
# usage: scripts/services.sh up|down|status|install|env [etcd|upstream|downstream|kafka|prometheus ...]
#   up       install what is missing, start what is not running, wait until each answers (idempotent)
#   down     stop what this script started (by its pid file); anything else on those ports is left alone
#   status   one line per service; exit 0 only when every named service answers
#   install  only install what is missing (apt packages, Kafka's jars)
#   env      print the variables the tests read, as shell exports
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${TIDEMARK_SERVICES_DIR:-$ROOT/.services}
ETCD_ADDR=${TIDEMARK_ETCD_ADDR:-127.0.0.1:2379}
UPSTREAM_ADDR=${TIDEMARK_UPSTREAM_ADDR:-127.0.0.1:3307}
DOWNSTREAM_ADDR=${TIDEMARK_DOWNSTREAM_ADDR:-127.0.0.1:3308}
KAFKA_ADDR=${TIDEMARK_KAFKA_ADDR:-127.0.0.1:9092}
PROMETHEUS_ADDR=${TIDEMARK_PROMETHEUS_ADDR:-127.0.0.1:9090}
START_TIMEOUT=${TIDEMARK_SERVICES_TIMEOUT:-90}
UPSTREAM_TLS_ADDR=${TIDEMARK_UPSTREAM_TLS_ADDR:-127.0.0.1:3309}
DOWNSTREAM_TLS_ADDR=${TIDEMARK_DOWNSTREAM_TLS_ADDR:-127.0.0.1:3310}
ETCD_TLS_ADDR=${TIDEMARK_ETCD_TLS_ADDR:-127.0.0.1:2391}
KAFKA_TLS_ADDR=${TIDEMARK_KAFKA_TLS_ADDR:-127.0.0.1:9094}
KAFKA_TLS_USER=${TIDEMARK_KAFKA_TLS_USER:-tidemark}
KAFKA_TLS_PASSWORD=${TIDEMARK_KAFKA_TLS_PASSWORD:-tidemark-secret}
KAFKA_TLS_CLIENT_AUTH=${TIDEMARK_KAFKA_TLS_CLIENT_AUTH:-required}
TLS_SERVICES=(upstream-tls downstream-tls etcd-tls kafka-tls)
ALL_SERVICES=(etcd upstream downstream kafka prometheus)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }
host_of() { printf '%s' "${1%:*}"; }
port_of() { printf '%s' "${1##*:}"; }

addr_of() {
  case $1 in
    etcd) printf '%s' "$ETCD_ADDR" ;;
    upstream) printf '%s' "$UPSTREAM_ADDR" ;;
    downstream) printf '%s' "$DOWNSTREAM_ADDR" ;;
    kafka) printf '%s' "$KAFKA_ADDR" ;;
    prometheus) printf '%s' "$PROMETHEUS_ADDR" ;;
    upstream-tls) printf '%s' "$UPSTREAM_TLS_ADDR" ;;
    downstream-tls) printf '%s' "$DOWNSTREAM_TLS_ADDR" ;;
    etcd-tls) printf '%s' "$ETCD_TLS_ADDR" ;;
    kafka-tls) printf '%s' "$KAFKA_TLS_ADDR" ;;
    *) die "unknown service \"$1\"; known: ${ALL_SERVICES[*]} ${TLS_SERVICES[*]}" ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/$(host_of "$1")/$(port_of "$1")") 2>/dev/null; }

# The pid recorded by `up`, if that process is still alive and is still the one we started.
our_pid() {
  local file="$DIR/$1.pid" pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR" || return 1
  printf '%s' "$pid"
}

# ---------------------------------------------------------------------------------------------- install
APT_UPDATED=0
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  local sudo=''
  [[ $(id -u) == 0 ]] || sudo='sudo'
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    $sudo apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing ${missing[*]} from Debian's packages"
  # Packaged daemons must not start themselves on their default ports: we run our own instances.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    ((made_policy)) && $sudo rm -f "$policy"
    die "apt-get install ${missing[*]} failed"
  }
  ((made_policy)) && $sudo rm -f "$policy"
  return 0
}

install_service() {
  case $1 in
    etcd) command -v etcd >/dev/null || apt_install etcd-server ;;
    etcd-tls)
      command -v etcd >/dev/null || apt_install etcd-server
      command -v openssl >/dev/null || apt_install openssl ;;
    upstream | downstream | upstream-tls | downstream-tls)
      [[ $1 != *-tls ]] || command -v openssl >/dev/null || apt_install openssl
      command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null || apt_install mariadb-server
      command -v mariadb >/dev/null || apt_install mariadb-client
      command -v mariadb-binlog >/dev/null || apt_install mariadb-client ;;
    kafka | kafka-tls)
      [[ $1 != *-tls ]] || command -v openssl >/dev/null || apt_install openssl
      command -v java >/dev/null || apt_install default-jre-headless
      command -v mvn >/dev/null || apt_install maven
      # the tests run Kafka Connect's JsonConverter from a single Java source file: that needs the JDK's compiler
      java --list-modules 2>/dev/null | grep -q '^jdk.compiler@' || apt_install default-jdk-headless
      kafka_classpath >/dev/null
      bash "$ROOT/scripts/kafka/connect-json.sh" >/dev/null ;;
    prometheus) command -v prometheus >/dev/null && command -v promtool >/dev/null || apt_install prometheus ;;
  esac
}

# The broker's runtime classpath, resolved by Maven from scripts/kafka/pom.xml and cached per pom content.
kafka_classpath() {
  local pom="$ROOT/scripts/kafka/pom.xml" sum cache
  sum=$(sha1sum "$pom" | cut -c1-12)
  cache="$DIR/kafka/classpath-$sum.txt"
  if [[ ! -s $cache ]] || ! all_jars_present "$cache"; then
    mkdir -p "$DIR/kafka"
    log "resolving Kafka's jars from Maven Central (cached in the local Maven repository)"
    mvn -B -q -f "$pom" dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$cache.tmp" >"$DIR/kafka/maven.log" 2>&1 ||
      die "Maven could not resolve Kafka's jars; see $DIR/kafka/maven.log"
    mv "$cache.tmp" "$cache"
  fi
  printf '%s' "$cache"
}

all_jars_present() {
  local jar
  while IFS= read -r -d ':' jar; do [[ -f $jar ]] || return 1; done < <(tr -d '\n' <"$1"; printf ':')
}

# ---------------------------------------------------------------------------------------------- start
# Starts "$@" detached from this shell (its own session), output to <name>.log, pid to <name>.pid.
spawn() {
  local name=$1
  shift
  setsid "$@" >>"$DIR/$name.log" 2>&1 </dev/null &
  printf '%s' "$!" >"$DIR/$name.pid"
}

start_etcd() {
  local host port peer
  host=$(host_of "$ETCD_ADDR") port=$(port_of "$ETCD_ADDR") peer=$(( $(port_of "$ETCD_ADDR") + 1 ))
  mkdir -p "$DIR/etcd"
  spawn etcd etcd --name tidemark --data-dir "$DIR/etcd" \
    --listen-client-urls "http://$host:$port" --advertise-client-urls "http://$host:$port" \
    --listen-peer-urls "http://$host:$peer" --initial-advertise-peer-urls "http://$host:$peer" \
    --initial-cluster "tidemark=http://$host:$peer" --initial-cluster-state new \
    --auto-compaction-mode revision --auto-compaction-retention 10000 --quota-backend-bytes 4294967296
}

# etcd over TLS only: clients must present a certificate signed by the test CA (--client-cert-auth); the peer
# port (client port + 1) stays plaintext on loopback. etcd reads the certificate files at each new connection.
start_etcd_tls() {
  local host port peer d
  host=$(host_of "$ETCD_TLS_ADDR") port=$(port_of "$ETCD_TLS_ADDR") peer=$(( $(port_of "$ETCD_TLS_ADDR") + 1 ))
  d=$(tls_dir)
  mkdir -p "$DIR/etcd-tls"
  spawn etcd-tls etcd --name tidemark-tls --data-dir "$DIR/etcd-tls" \
    --listen-client-urls "https://$host:$port" --advertise-client-urls "https://$host:$port" \
    --cert-file "$d/server-cert.pem" --key-file "$d/server-key.pem" --trusted-ca-file "$d/ca.pem" --client-cert-auth \
    --listen-peer-urls "http://$host:$peer" --initial-advertise-peer-urls "http://$host:$peer" \
    --initial-cluster "tidemark-tls=http://$host:$peer" --initial-cluster-state new \
    --auto-compaction-mode revision --auto-compaction-retention 10000
}

# A client certificate (CN tidemark-client) signed by the test CA, unless $TLS_DIR has one already.
tls_client_cert() {
  local d
  d=$(tls_dir)
  [[ -f $d/client-cert.pem && -f $d/client-key.pem ]] && return 0
  [[ -f $d/ca-key.pem ]] || die "no $d/ca-key.pem to sign a client certificate with; put client-cert.pem and client-key.pem in $d"
  log "making a test client certificate (CN tidemark-client) in $d"
  openssl req -newkey rsa:2048 -nodes -subj '/CN=tidemark-client' -keyout "$d/client-key.pem" -out "$d/client.csr" 2>/dev/null
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 825 \
    -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$d/client-cert.pem" 2>/dev/null
  rm -f "$d/client.csr"
}

# $1 datadir, $2 log file
install_datadir() {
  rm -rf "$1" && mkdir -p "$1"
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$1" --auth-root-authentication-method=normal \
    --skip-test-db >"$2" 2>&1
}

# $1 name, $2 address, rest: extra mariadbd options
start_mariadb() {
  local name=$1 addr=$2
  shift 2
  local data="$DIR/$name"
  if [[ ! -d $data/mysql ]]; then
    log "initialising $name datadir $data"
    install_datadir "$data" "$DIR/$name-install.log" || {
      # Show why (the log is gone with a CI checkout), then try once more from an empty directory.
      log "mariadb-install-db for $name failed; last lines of $DIR/$name-install.log:"
      tail -n 25 "$DIR/$name-install.log" >&2 || true
      df -h "$DIR" >&2 || true
      log "retrying once"
      sleep 2
      install_datadir "$data" "$DIR/$name-install.log" || {
        tail -n 25 "$DIR/$name-install.log" >&2 || true
        die "mariadb-install-db for $name failed twice; see $DIR/$name-install.log"
      }
    }
  fi
  spawn "$name" mariadbd --no-defaults --user="$(id -un)" --datadir="$data" \
    --bind-address="$(host_of "$addr")" --port="$(port_of "$addr")" --socket="$DIR/$name.sock" \
    --pid-file="$DIR/$name.mariadbd.pid" --log-error="$DIR/$name.err" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --max-connections=1000 --max-allowed-packet=1G \
    --innodb-buffer-pool-size=512M --innodb-log-file-size=512M --innodb-flush-log-at-trx-commit=2 \
    "$@"
}

start_service() {
  case $1 in
    etcd) start_etcd ;;
    upstream)
      start_mariadb upstream "$UPSTREAM_ADDR" --server-id=1 --log-bin=mysql-bin --binlog-format=ROW \
        --binlog-row-image=FULL --binlog-row-metadata=FULL --binlog-checksum=CRC32 --sync-binlog=0 \
        --max-binlog-size=1G ;;
    downstream) start_mariadb downstream "$DOWNSTREAM_ADDR" --server-id=2 --skip-log-bin ;;
    upstream-tls)
      tls_certs
      start_mariadb upstream-tls "$UPSTREAM_TLS_ADDR" --server-id=3 --log-bin=mysql-bin --binlog-format=ROW \
        --binlog-row-image=FULL --binlog-row-metadata=FULL --binlog-checksum=CRC32 --sync-binlog=0 \
        --max-binlog-size=1G $(tls_options) ;;
    etcd-tls) tls_certs && tls_client_cert && start_etcd_tls ;;
    downstream-tls) tls_certs && start_mariadb downstream-tls "$DOWNSTREAM_TLS_ADDR" --server-id=4 --skip-log-bin $(tls_options) ;;
    kafka) start_kafka ;;
    kafka-tls) tls_certs && start_kafka_tls ;;
    prometheus) start_prometheus ;;
  esac
}

# The TLS variants: certificates from $TLS_DIR (`FLUSH SSL` reloads them), TLS-only, and smaller than the
# plain services (tests start them on their own ports with their own certificates).
tls_dir() { printf '%s' "${TIDEMARK_TLS_DIR:-$DIR/tls}"; }
tls_options() {
  local d
  d=$(tls_dir)
  printf '%s ' --ssl-ca="$d/ca.pem" --ssl-cert="$d/server-cert.pem" --ssl-key="$d/server-key.pem" \
    --require-secure-transport=ON --performance-schema=ON --innodb-buffer-pool-size=128M --innodb-log-file-size=96M
}

# A CA and a server certificate for 127.0.0.1 and localhost, unless $TLS_DIR has them already.
tls_certs() {
  local d
  d=$(tls_dir)
  [[ -f $d/ca.pem && -f $d/server-cert.pem && -f $d/server-key.pem ]] && return 0
  [[ $d != *' '* ]] || die "TIDEMARK_TLS_DIR must not contain spaces: $d"
  mkdir -p "$d"
  log "making a test CA and a server certificate for 127.0.0.1/localhost in $d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=Tidemark test CA' \
    -addext basicConstraints=critical,CA:TRUE -keyout "$d/ca-key.pem" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout "$d/server-key.pem" -out "$d/server.csr" 2>/dev/null
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial -days 825 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') -out "$d/server-cert.pem" 2>/dev/null
  rm -f "$d/server.csr"
}

# The mariadb client for a MariaDB service: over TLS for the TLS variants (they refuse anything else).
mariadb_client() {
  local name=$1 addr tls=()
  addr=$(addr_of "$name")
  shift
  [[ $name != *-tls ]] || tls=(--ssl --ssl-ca="$(tls_dir)/ca.pem")
  mariadb --no-defaults "${tls[@]}" -h "$(host_of "$addr")" -P "$(port_of "$addr")" -uroot "$@"
}

start_kafka() {
  local cp host port ctl faults conf="$DIR/kafka/server.properties"
  cp=$(<"$(kafka_classpath)")
  host=$(host_of "$KAFKA_ADDR") port=$(port_of "$KAFKA_ADDR") ctl=$(( $(port_of "$KAFKA_ADDR") + 1 )) faults=$(( $(port_of "$KAFKA_ADDR") + 5 ))
  mkdir -p "$DIR/kafka/data"
  cat >"$conf" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$ctl
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$ctl,FAULTS://$host:$faults
advertised.listeners=PLAINTEXT://$host:$port,FAULTS://$host:$(( faults + 1 ))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,FAULTS:PLAINTEXT
log.dirs=$DIR/kafka/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
EOF
  cat >"$DIR/kafka/log4j.properties" <<EOF
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
  local java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$DIR/kafka/log4j.properties" "-Dtidemark.services=$DIR")
  if [[ ! -f $DIR/kafka/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>>"$DIR/kafka.log" | tail -n1)
    java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$conf" >>"$DIR/kafka.log" 2>&1 ||
      die "formatting Kafka's storage failed; see $DIR/kafka.log"
  fi
  spawn kafka java -cp "$cp" "${java_opts[@]}" kafka.Kafka "$conf"
}

# Prometheus for the cluster's /metrics: scrape targets from file_sd files (<dir>/targets/*.json, which tests and
# operators write; a default one names the quick start's 127.0.0.1:8300), alert rules from the repo's metrics/
# and from <dir>/rules/*.yml (tests add theirs, then POST /-/reload). Scrapes and evaluates every 2 s.
start_prometheus() {
  local dir="$DIR/prometheus" interval=${TIDEMARK_PROMETHEUS_INTERVAL:-2s}
  mkdir -p "$dir/data" "$dir/targets" "$dir/rules"
  [[ -f $dir/targets/default.json ]] ||
    printf '[{"targets": ["127.0.0.1:8300"], "labels": {"source": "default"}}]\n' >"$dir/targets/default.json"
  cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: $interval
  scrape_timeout: $interval
  evaluation_interval: $interval
rule_files:
  - $ROOT/metrics/*.rules.yml
  - $dir/rules/*.yml
scrape_configs:
  - job_name: tidemark
    metrics_path: /metrics
    file_sd_configs:
      - files: ['$dir/targets/*.json']
        refresh_interval: 1s
EOF
  spawn prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=2d --web.listen-address="$PROMETHEUS_ADDR" --web.enable-lifecycle
}

wait_ready() {
  local name=$1 addr deadline
  addr=$(addr_of "$name")
  deadline=$((SECONDS + START_TIMEOUT))
  until ready "$name" "$addr"; do
    if ! our_pid "$name" >/dev/null; then
      log "$name exited during start-up; last lines of its logs:"
      tail -n 20 "$DIR/$name.log" "$DIR/$name.err" 2>/dev/null >&2 || true
      die "$name did not start on $addr"
    fi
    ((SECONDS < deadline)) || die "$name did not answer on $addr within ${START_TIMEOUT}s; see $DIR/$name.log"
    sleep 0.3
  done
}

# Answers its protocol, not just an open port.
ready() {
  local name=$1 addr=$2
  port_open "$addr" || return 1
  case $name in
    etcd) curl -fsS -m 2 "http://$addr/health" 2>/dev/null | grep -q '"health":"true"' ;;
    etcd-tls)
      curl -fsS -m 2 --cacert "$(tls_dir)/ca.pem" --cert "$(tls_dir)/client-cert.pem" --key "$(tls_dir)/client-key.pem" \
        "https://$addr/health" 2>/dev/null | grep -q '"health":"true"' ;;
    upstream | downstream | upstream-tls | downstream-tls) mariadb_client "$name" --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1 ;;
    kafka) kafka_answers "$addr" ;;
    kafka-tls) kafka_answers "$(host_of "$addr"):$(( $(port_of "$addr") + 2 ))" ;;
    prometheus) curl -fsS -m 2 "http://$addr/-/ready" >/dev/null 2>&1 ;;
  esac
}

# Kafka with a SASL_SSL client listener only (see the header): PEM key and certificates from $TLS_DIR, SCRAM
# credentials written into the metadata when the storage is formatted, PLAIN users in the listener's JAAS line.
start_kafka_tls() {
  local cp host port ctl internal d dir="$DIR/kafka-tls" conf
  cp=$(<"$(kafka_classpath)")
  host=$(host_of "$KAFKA_TLS_ADDR") port=$(port_of "$KAFKA_TLS_ADDR") ctl=$(( $(port_of "$KAFKA_TLS_ADDR") + 1 )) internal=$(( $(port_of "$KAFKA_TLS_ADDR") + 2 ))
  d=$(tls_dir) conf="$dir/server.properties"
  case $KAFKA_TLS_CLIENT_AUTH in
    required | requested | none) ;;
    *) die "TIDEMARK_KAFKA_TLS_CLIENT_AUTH=$KAFKA_TLS_CLIENT_AUTH: one of required, requested, none (Kafka's ssl.client.auth)" ;;
  esac
  mkdir -p "$dir/data"
  # Kafka's PEM key store: the unencrypted PKCS#8 key and the certificate in one file
  cat "$d/server-key.pem" "$d/server-cert.pem" >"$dir/keystore.pem"
  cat >"$conf" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$ctl
listeners=SASL_SSL://$host:$port,CONTROLLER://$host:$ctl,INTERNAL://127.0.0.1:$internal
advertised.listeners=SASL_SSL://$host:$port,INTERNAL://127.0.0.1:$internal
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$dir/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
# on a SASL_SSL listener only the listener-prefixed setting turns mutual TLS on (KIP-684)
listener.name.sasl_ssl.ssl.client.auth=$KAFKA_TLS_CLIENT_AUTH
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_TLS_USER="$KAFKA_TLS_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
  local java_opts=(-Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$dir/log4j.properties" "-Dtidemark.services=$DIR")
  if [[ ! -f $dir/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>>"$DIR/kafka-tls.log" | tail -n1)
    java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$conf" \
      --add-scram "SCRAM-SHA-256=[name=$KAFKA_TLS_USER,password=$KAFKA_TLS_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_TLS_USER,password=$KAFKA_TLS_PASSWORD]" >>"$DIR/kafka-tls.log" 2>&1 ||
      die "formatting the TLS Kafka's storage failed; see $DIR/kafka-tls.log"
  fi
  spawn kafka-tls java -cp "$cp" "${java_opts[@]}" kafka.Kafka "$conf"
}

# Sends a Kafka ApiVersions v0 request (correlation id 7) and expects a response with error code 0.
kafka_answers() {
  local reply
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x07\x00\x04tdmk" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"' _ "$(host_of "$1")" "$(port_of "$1")" 2>/dev/null) || return 1
  [[ ${reply:8:12} == 000000070000 ]]
}

# The servers preallocate about 1.5 GiB (redo logs, Kafka segments) and the tests write a few GiB of binlog.
check_free_space() {
  local free_kib
  free_kib=$(df -Pk "$DIR" | awk 'NR == 2 { print $4 }')
  [[ $free_kib =~ ^[0-9]+$ ]] || return 0
  if ((free_kib < 4 * 1024 * 1024)); then
    log "warning: only $((free_kib / 1024)) MiB free under $DIR; the services and tests need about 4 GiB"
  fi
}

# ---------------------------------------------------------------------------------------------- verbs
cmd_install() {
  local name
  for name in "$@"; do install_service "$name"; done
  command -v curl >/dev/null || apt_install curl
  command -v tmux >/dev/null || apt_install tmux # the real-terminal test of `cdc top`
}

cmd_up() {
  mkdir -p "$DIR"
  cmd_install "$@"
  check_free_space
  local name addr started=()
  for name in "$@"; do
    addr=$(addr_of "$name")
    if our_pid "$name" >/dev/null; then
      continue
    elif port_open "$addr"; then
      log "$name: $addr is already served by a process this script did not start; using it as it is"
      continue
    fi
    log "starting $name on $addr"
    : >"$DIR/$name.log"
    start_service "$name"
    started+=("$name")
  done
  for name in "${started[@]}"; do wait_ready "$name"; done
  for name in "${started[@]}"; do post_start "$name"; done
  cmd_status "$@"
}

post_start() {
  case $1 in
    upstream | downstream | upstream-tls | downstream-tls) mariadb_client "$1" -e 'CREATE DATABASE IF NOT EXISTS test' ;;
  esac
}

cmd_down() {
  local name pid i
  for name in "$@"; do
    if pid=$(our_pid "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop within 30s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$DIR/$name.pid"
  done
}

cmd_status() {
  local name addr state all=0
  for name in "$@"; do
    addr=$(addr_of "$name")
    if ready "$name" "$addr"; then
      if our_pid "$name" >/dev/null; then state="up (pid $(our_pid "$name"), data in $DIR)"; else state="up (not started by this script)"; fi
    elif port_open "$addr"; then
      state='port open but not answering'
      all=1
    else
      state='down'
      all=1
    fi
    printf '%-10s %-16s %s\n' "$name" "$addr" "$state"
  done
  return $all
}

cmd_env() {
  printf 'export TIDEMARK_ETCD_ADDR=%q\n' "$ETCD_ADDR"
  printf 'export TIDEMARK_UPSTREAM_ADDR=%q\n' "$UPSTREAM_ADDR"
  printf 'export TIDEMARK_DOWNSTREAM_ADDR=%q\n' "$DOWNSTREAM_ADDR"
  printf 'export TIDEMARK_KAFKA_ADDR=%q\n' "$KAFKA_ADDR"
  printf 'export TIDEMARK_PROMETHEUS_ADDR=%q\n' "$PROMETHEUS_ADDR"
  printf 'export TIDEMARK_UPSTREAM_TLS_ADDR=%q\n' "$UPSTREAM_TLS_ADDR"
  printf 'export TIDEMARK_DOWNSTREAM_TLS_ADDR=%q\n' "$DOWNSTREAM_TLS_ADDR"
  printf 'export TIDEMARK_ETCD_TLS_ADDR=%q\n' "$ETCD_TLS_ADDR"
  printf 'export TIDEMARK_KAFKA_TLS_ADDR=%q\n' "$KAFKA_TLS_ADDR"
  printf 'export TIDEMARK_TLS_DIR=%q\n' "$(tls_dir)"
}

verb=${1:-}
[[ -n $verb ]] || die "usage: $0 up|down|status|install|env [${ALL_SERVICES[*]}]"
shift
services=("$@")
((${#services[@]})) || services=("${ALL_SERVICES[@]}")
for name in "${services[@]}"; do addr_of "$name" >/dev/null; done
case $verb in
  up) cmd_up "${services[@]}" ;;
  down) cmd_down "${services[@]}" ;;
  status) cmd_status "${services[@]}" ;;
  install) mkdir -p "$DIR" && cmd_install "${services[@]}" ;;
  env) cmd_env ;;
  *) die "unknown verb \"$verb\"; allowed: up, down, status, install, env" ;;
esac
