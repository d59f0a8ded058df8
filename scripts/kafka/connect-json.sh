#!/usr/bin/env bash
# Prints the path of a file holding Kafka Connect's JsonConverter classpath (org.apache.kafka:connect-json and its
# dependencies), resolved by Maven from Maven Central at the Kafka version of scripts/kafka/pom.xml and cached per
# pom content, as services.sh's kafka_classpath does for the broker. `bash scripts/kafka/connect-json.sh` on a fresh
# machine (Java and Maven installed by services.sh) fetches it once.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${TIDEMARK_SERVICES_DIR:-$ROOT/.services}
pom="$ROOT/scripts/kafka/connect-json/pom.xml"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml" | head -1)
[[ -n $version ]] || { echo "connect-json.sh: no kafka.version in scripts/kafka/pom.xml" >&2; exit 1; }
sum=$(cat "$pom" <(printf '%s' "$version") | sha1sum | cut -c1-12)
cache="$DIR/kafka/connect-json-classpath-$sum.txt"
present() { local jar; IFS=: read -ra jars <"$1"; for jar in "${jars[@]}"; do [[ -f $jar ]] || return 1; done; }
if [[ ! -s $cache ]] || ! present "$cache"; then
  mkdir -p "$DIR/kafka"
  mvn -B -q -f "$pom" -Dkafka.version="$version" dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile="$cache.tmp" >"$DIR/kafka/connect-json-maven.log" 2>&1 ||
    { echo "connect-json.sh: Maven could not resolve connect-json $version; see $DIR/kafka/connect-json-maven.log" >&2; exit 1; }
  mv "$cache.tmp" "$cache"
fi
printf '%s\n' "$cache"
