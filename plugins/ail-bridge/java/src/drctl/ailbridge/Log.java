package drctl.ailbridge;

import java.io.PrintStream;

/**
 * Log lines on stderr as {@code LEVEL message}; the plugin forwards each line
 * to the host's log at that level. Never given a password.
 */
final class Log {
    private static final PrintStream ERR = System.err;

    private Log() {}

    static void error(String msg) {
        line("ERROR", msg);
    }

    static void warn(String msg) {
        line("WARN", msg);
    }

    static void info(String msg) {
        line("INFO", msg);
    }

    static void debug(String msg) {
        line("DEBUG", msg);
    }

    private static void line(String level, String msg) {
        // One println per line so concurrent threads never interleave inside a line.
        ERR.println(level + " " + msg.replace('\n', ' ').replace('\r', ' '));
    }
}
