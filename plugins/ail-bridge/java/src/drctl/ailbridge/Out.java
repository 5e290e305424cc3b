package drctl.ailbridge;

import java.io.BufferedWriter;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The protocol writer: one thread owns stdout. AIL listener callbacks and the
 * command worker only enqueue (never block on the pipe), so a slow reader on
 * the plugin side can never stall an AIL event thread.
 */
final class Out {
    private static final String EOF = new String("<eof>");
    private final BlockingQueue<String> queue = new LinkedBlockingQueue<>();
    private final BufferedWriter writer;
    private final Thread thread;

    /** Takes over file descriptor 1; {@code System.out} should be redirected away first. */
    Out() {
        writer = new BufferedWriter(new OutputStreamWriter(
                new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8), 1 << 16);
        thread = new Thread(this::run, "drctl-ail-writer");
        thread.setDaemon(true);
        thread.start();
    }

    /** Queues one message (a JSON object) as one line. */
    void send(Object message) {
        queue.offer(Json.write(message));
    }

    /** Writes everything queued so far, then stops the writer (bounded wait). */
    void close(long timeoutMillis) {
        queue.offer(EOF);
        try {
            thread.join(timeoutMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        try {
            while (true) {
                String line = queue.take();
                if (line == EOF) {
                    writer.flush();
                    return;
                }
                writer.write(line);
                writer.write('\n');
                // Flush when caught up: one syscall per burst, not per line.
                if (queue.isEmpty()) {
                    writer.flush();
                }
            }
        } catch (IOException e) {
            // The plugin is gone (broken pipe): nothing left to talk to.
            Log.error("cannot write to the plugin: " + e.getMessage() + "; exiting");
            Runtime.getRuntime().halt(4);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
