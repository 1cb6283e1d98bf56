#!/usr/bin/env bash
# Fetch the embedded Neo4j jars from Maven Central into storage/neo4j/lib/ (idempotent).
# Set NEO4J_REFETCH=1 to fetch again even when lib/ already holds the jars.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lib="$here/lib"
version="$(sed -n 's:.*<neo4j.version>\(.*\)</neo4j.version>.*:\1:p' "$here/pom.xml")"
if [[ "${NEO4J_REFETCH:-0}" != 1 && -f "$lib/neo4j-$version.jar" && -f "$lib/neo4j-bolt-$version.jar" && -f "$lib/.complete" ]]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch.sh: mvn (Maven) is required to fetch the Neo4j jars" >&2; exit 1; }
# Fetch into a temporary folder, then swap it in, so an interrupted fetch never leaves a partial lib/.
tmp="$(mktemp -d "$here/.lib.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Quiet on success (Debian's Maven prints stray colour codes even with -q); all output on failure.
if ! out="$(mvn -q -B -Dstyle.color=never -f "$here/pom.xml" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1)"; then
  printf '%s\n' "$out" >&2
  echo "fetch.sh: could not fetch the Neo4j jars from Maven Central" >&2
  exit 1
fi
touch "$tmp/.complete"
rm -rf "$lib"
mv "$tmp" "$lib"
trap - EXIT
