#!/usr/bin/env bash
# Start an embedded Neo4j Community 5.26 with Bolt on 127.0.0.1:PORT (no Docker).
#   storage/neo4j/run.sh DATA_DIR PORT [PASSWORD]
# Prints `READY bolt://127.0.0.1:PORT` on stdout when Bolt accepts connections; stops
# cleanly on SIGTERM. Fetches the jars first if lib/ is missing. JAVA (env) picks the java binary;
# NEO4J_HEAP (env, default 1g) sets -Xmx; NEO4J_PAGECACHE (env, e.g. 3g) the page cache, else
# 1.25 x the store already in DATA_DIR, at least 256m (Launcher.java). Sizes for 1M runs: heap
# 2g, page cache 3g (bench/README.md, "A million runs").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch.sh" >&2
exec "${JAVA:-java}" \
  -Xmx"${NEO4J_HEAP:-1g}" -Xms256m \
  -XX:+UseG1GC \
  -XX:-OmitStackTraceInFastThrow \
  -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields \
  -XX:+DisableExplicitGC \
  -XX:+ExitOnOutOfMemoryError \
  -Djdk.nio.maxCachedBufferSize=1024 \
  -Dio.netty.tryReflectionSetAccessible=true \
  -Dlog4j2.disable.jmx=true \
  -Dfile.encoding=UTF-8 \
  --add-opens=java.base/java.nio=ALL-UNNAMED \
  --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
  --enable-native-access=ALL-UNNAMED \
  -cp "$here/lib/*" \
  "$here/Launcher.java" "$@"
