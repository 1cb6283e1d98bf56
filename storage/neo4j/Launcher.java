// Embedded Neo4j Community launcher (no Docker, no server distribution).
//
// Run (jars from `mvn dependency:copy-dependencies`, see pom.xml / run.sh):
//   java <jvm flags> -cp 'storage/neo4j/lib/*' storage/neo4j/Launcher.java DATA_DIR PORT [PASSWORD]
//
// Starts a DBMS whose home is DATA_DIR, with only the Bolt connector enabled, on
// 127.0.0.1:PORT. Without PASSWORD authentication is off; with it, authentication is on
// and the user `neo4j` gets PASSWORD (no forced change). Prints exactly
// `READY bolt://127.0.0.1:PORT` on stdout once Bolt accepts connections, then runs until
// SIGTERM/SIGINT, when a shutdown hook stops the DBMS cleanly. Neo4j's own logs go to
// DATA_DIR/logs (debug.log); nothing else is written to stdout.
//
// Memory: the heap is -Xmx (run.sh: NEO4J_HEAP); the page cache, which holds the store files,
// is NEO4J_PAGECACHE (e.g. 512m, 3g) when set, else sized from the store found in DATA_DIR:
// 1.25 x its files (every page of the store cached, with room to grow), at least 256 MiB.
// A fresh DATA_DIR gets 256 MiB: give NEO4J_PAGECACHE to a store about to grow (1M runs take
// ~2.4 GiB on disk; bench/README.md).
//
// With the environment variable NEO4J_STOP_ON_STDIN_EOF=1 it also stops (cleanly) when its
// stdin reaches end-of-file, so a parent that holds the other end of a pipe (a test harness)
// can never leave an orphaned Neo4j behind, even if the parent is killed.

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

public final class Launcher {
    private static final String HOST = "127.0.0.1";
    private static final long AVAILABLE_TIMEOUT_MS = 120_000;

    private Launcher() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Launcher DATA_DIR PORT [PASSWORD]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath().normalize();
        int port;
        try {
            port = Integer.parseInt(args[1]);
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 1 || port > 65535) {
            System.err.println("PORT must be an integer in 1..65535, got: " + args[1]);
            System.exit(2);
        }
        String password = args.length == 3 ? args[2] : null;
        if (password != null && password.length() < 8) {
            // Neo4j 5 refuses shorter passwords (dbms.security.auth_minimum_password_length).
            System.err.println("PASSWORD must be at least 8 characters");
            System.exit(2);
        }
        Files.createDirectories(home);

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(Map.of(
                        // Connectors: Bolt only, loopback only.
                        GraphDatabaseSettings.default_listen_address, new SocketAddress(HOST),
                        BoltConnector.enabled, true,
                        BoltConnector.listen_address, new SocketAddress(HOST, port),
                        BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED,
                        HttpConnector.enabled, false,
                        HttpsConnector.enabled, false,
                        GraphDatabaseSettings.auth_enabled, password != null,
                        // Memory: explicit page cache, heap comes from -Xmx.
                        GraphDatabaseSettings.pagecache_memory, pageCache(home)))
                .setConfig(Map.of(
                        // Transaction logs: small, not preallocated, little retention.
                        GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(8),
                        GraphDatabaseSettings.preallocate_logical_logs, false,
                        GraphDatabaseSettings.keep_logical_logs, "1 files",
                        GraphDatabaseSettings.transaction_timeout, Duration.ofMinutes(10),
                        GraphDatabaseSettings.shutdown_transaction_end_timeout, Duration.ofSeconds(5),
                        // Logs under DATA_DIR; no usage reporting.
                        GraphDatabaseSettings.logs_directory, home.resolve("logs"),
                        GraphDatabaseSettings.udc_enabled, false))
                .setConfig(Map.of(
                        // Stop fast: by the time Bolt's event loops shut down, every database is
                        // already checkpointed and closed, so the default 5s netty quiet periods
                        // (two of them) only add ~10s to each stop.
                        GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0,
                        GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5)))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown, "neo4j-shutdown"));
        if ("1".equals(System.getenv("NEO4J_STOP_ON_STDIN_EOF"))) {
            Thread watcher = new Thread(Launcher::exitOnStdinEof, "neo4j-stdin-watch");
            watcher.setDaemon(true);
            watcher.start();
        }

        try {
            GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
            if (!db.isAvailable(AVAILABLE_TIMEOUT_MS)) {
                System.err.println("database 'neo4j' did not become available in time");
                System.exit(1);
            }
            if (password != null) {
                setPassword(dbms, password);
            }
            waitForBolt(port, AVAILABLE_TIMEOUT_MS);
        } catch (Exception e) {
            // Neo4j's threads are not daemons: without an explicit exit the JVM would linger.
            e.printStackTrace();
            System.exit(1);
        }

        System.out.println("READY bolt://" + HOST + ":" + port);
        System.out.flush();

        new CountDownLatch(1).await(); // until SIGTERM/SIGINT runs the shutdown hook
    }

    /** NEO4J_PAGECACHE, else 1.25 x the store files under home/data, at least 256 MiB. */
    static long pageCache(Path home) throws IOException {
        String given = System.getenv("NEO4J_PAGECACHE");
        if (given != null && !given.isBlank()) {
            return ByteUnit.parse(given.trim());
        }
        long floor = ByteUnit.mebiBytes(256);
        Path data = home.resolve("data").resolve("databases");
        if (!Files.isDirectory(data)) {
            return floor;
        }
        long size;
        try (var files = Files.walk(data)) {
            size = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
        return Math.max(floor, size + size / 4);
    }

    private static void exitOnStdinEof() {
        try {
            while (System.in.read() != -1) {
                // ignore input; only end-of-file matters
            }
        } catch (IOException e) {
            // a broken stdin means the parent is gone, same as end-of-file
        }
        System.exit(0); // runs the shutdown hook
    }

    private static void setPassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (RuntimeException e) {
            // A restart with the password already set: Neo4j refuses to "change" it to itself.
            String message = String.valueOf(e.getMessage());
            if (!message.contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    private static void waitForBolt(int port, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(HOST, port), 1000);
                return;
            } catch (IOException e) {
                if (System.currentTimeMillis() > deadline) {
                    System.err.println("Bolt did not accept connections on " + HOST + ":" + port);
                    System.exit(1);
                }
                Thread.sleep(100);
            }
        }
    }
}
