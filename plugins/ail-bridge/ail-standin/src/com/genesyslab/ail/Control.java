package com.genesyslab.ail;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;

/**
 * Stand-in only: reports the JVM's AIL lifecycle (pid, each AilLoader with
 * its loading/on-demand option, each killFactory) to the test's control
 * listener named by the system property {@code ailstandin.control}
 * (host:port). The connection stays open for the JVM's lifetime, so the test
 * sees the JVM die as end of stream.
 */
final class Control {
    private static Writer out;
    private static Socket socket;
    private static boolean tried;

    private Control() {}

    static synchronized void report(String... fields) {
        if (!tried) {
            tried = true;
            connect();
        }
        if (out == null) {
            return;
        }
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < fields.length; i++) {
            if (i > 0) {
                line.append('\t');
            }
            line.append(URLEncoder.encode(fields[i], StandardCharsets.UTF_8));
        }
        try {
            out.write(line.append('\n').toString());
            out.flush();
        } catch (IOException e) {
            out = null;
        }
    }

    private static void connect() {
        String address = System.getProperty("ailstandin.control");
        if (address == null || address.isEmpty()) {
            return;
        }
        int colon = address.lastIndexOf(':');
        try {
            socket = new Socket();
            socket.connect(new InetSocketAddress(address.substring(0, colon),
                    Integer.parseInt(address.substring(colon + 1))), 5000);
            out = new OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8);
            out.write("HELLO\t" + ProcessHandle.current().pid() + "\n");
            out.flush();
        } catch (IOException | RuntimeException e) {
            System.err.println("WARN ail-standin: no control channel at " + address + ": " + e);
            out = null;
        }
    }
}
