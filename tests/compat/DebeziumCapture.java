// DebeziumCapture.java - run Debezium's PostgreSQL connector and write what a Kafka
// Connect worker would put into Kafka, one JSON line per record, for tests/compat.
//
//   java -cp '<cache>/debezium-<version>/libs/*:<classes>' DebeziumCapture \
//        OUT.jsonl key=value...
//
// The key=value arguments are the connector's properties (database.*, slot.name,
// publication.name, topic.prefix, snapshot.mode and any option under test); the
// engine's own (name, connector.class, offset storage) have defaults here that an
// argument overrides. Every record is converted as a worker converts it: key and
// value with Kafka Connect's JsonConverter, both with schemas.enable=false and
// schemas.enable=true, and the headers with the worker's default SimpleHeaderConverter.
// Each line of OUT.jsonl is
//
//   {"topic": T, "key": K, "value": V, "key_schema": KS, "value_schema": VS,
//    "headers": {name: text, ...}}
//
// where K and V are the schemaless JSON (null for a null key or a tombstone) and KS
// and VS the {"schema": ..., "payload": ...} envelopes. A line is flushed before the
// engine is told the record is processed. The program prints "ready" on stderr
// when the connector runs, and stops cleanly (offsets flushed) when its standard
// input closes or it gets SIGTERM.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import java.io.BufferedOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.storage.SimpleHeaderConverter;

public final class DebeziumCapture {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final JsonConverter plainKey = converter(true, false);
    private final JsonConverter plainValue = converter(false, false);
    private final JsonConverter schemaKey = converter(true, true);
    private final JsonConverter schemaValue = converter(false, true);
    private final SimpleHeaderConverter headers = new SimpleHeaderConverter();
    private final OutputStream out;

    private DebeziumCapture(OutputStream out) {
        this.out = out;
        headers.configure(Map.of());
    }

    private static JsonConverter converter(boolean isKey, boolean schemas) {
        JsonConverter c = new JsonConverter();
        // the worker's defaults, but for schemas.enable; decimals as the worker writes them
        c.configure(Map.of("schemas.enable", Boolean.toString(schemas),
                           "schemas.cache.size", "1000"), isKey);
        return c;
    }

    private static JsonNode parse(byte[] bytes) throws IOException {
        return bytes == null ? null : JSON.readTree(bytes);
    }

    private void write(SourceRecord r) throws IOException {
        String t = r.topic();
        ObjectNode line = JSON.createObjectNode();
        line.put("topic", t);
        line.set("key", parse(plainKey.fromConnectData(t, r.keySchema(), r.key())));
        line.set("value", parse(plainValue.fromConnectData(t, r.valueSchema(), r.value())));
        line.set("key_schema", parse(schemaKey.fromConnectData(t, r.keySchema(), r.key())));
        line.set("value_schema",
                 parse(schemaValue.fromConnectData(t, r.valueSchema(), r.value())));
        ObjectNode h = line.putObject("headers");
        for (Header header : r.headers()) {
            byte[] b = headers.fromConnectHeader(t, header.key(), header.schema(), header.value());
            if (b == null) {
                h.putNull(header.key());
            } else {
                h.put(header.key(), new String(b, StandardCharsets.UTF_8));
            }
        }
        out.write(JSON.writeValueAsBytes(line));
        out.write('\n');
    }

    private void handle(List<RecordChangeEvent<SourceRecord>> batch,
                        DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer)
        throws InterruptedException {
        try {
            for (RecordChangeEvent<SourceRecord> e : batch) {
                write(e.record());
            }
            out.flush();
        } catch (IOException e) {
            throw new IllegalStateException("cannot write the capture file: " + e.getMessage(), e);
        }
        for (RecordChangeEvent<SourceRecord> e : batch) {
            committer.markProcessed(e);
        }
        committer.markBatchFinished();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: DebeziumCapture OUT.jsonl key=value...");
            System.exit(2);
        }
        Properties props = new Properties();
        props.setProperty("name", "pgcdc-compat");
        props.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        props.setProperty("plugin.name", "pgoutput");
        props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        props.setProperty("offset.flush.interval.ms", "1000");
        for (int i = 1; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("DebeziumCapture: expected key=value, got \"" + args[i] + "\"");
                System.exit(2);
            }
            props.setProperty(args[i].substring(0, eq), args[i].substring(eq + 1));
        }

        OutputStream out = new BufferedOutputStream(new FileOutputStream(args[0]), 1 << 16);
        DebeziumCapture capture = new DebeziumCapture(out);
        CountDownLatch done = new CountDownLatch(1);
        final Throwable[] failure = new Throwable[1];
        DebeziumEngine<RecordChangeEvent<SourceRecord>> engine =
            DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
                .using(props)
                .notifying(capture::handle)
                .using(new DebeziumEngine.ConnectorCallback() {
                    @Override
                    public void taskStarted() {
                        System.err.println("ready");
                        System.err.flush();
                    }
                })
                .using((success, message, error) -> {
                    if (!success) {
                        System.err.println("DebeziumCapture: the engine stopped: " + message);
                        failure[0] = error != null ? error : new IllegalStateException(message);
                    }
                    done.countDown();
                })
                .build();

        ExecutorService runner = Executors.newSingleThreadExecutor();
        runner.execute(engine);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                engine.close();
                done.await(30, TimeUnit.SECONDS);
                out.close();
            } catch (Exception e) {
                // exiting anyway
            }
        }));
        // stop when standard input closes (or the engine stops by itself)
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing to read but the end
                }
            } catch (IOException e) {
                // treated as the end
            }
            try {
                engine.close();
            } catch (IOException e) {
                // the completion callback reports it
            }
        });
        stdin.setDaemon(true);
        stdin.start();
        done.await();
        runner.shutdown();
        out.close();
        if (failure[0] != null) {
            failure[0].printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }
}
