package com.genesyslab.ail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The stand-in's connection to a "CS Proxy" (a loopback listener run by the
 * test). One line a message, fields separated by tabs, each URL-encoded.
 */
final class Link {
    private final Socket socket;
    private final BufferedReader in;
    private final Writer out;
    /** Agent logins waiting for the deployment's answer, by DN: "" = done, else why not. */
    private final Map<String, CompletableFuture<String>> logins = new ConcurrentHashMap<>();

    private Link(Socket socket) throws IOException {
        this.socket = socket;
        this.in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        this.out = new OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8);
    }

    /** Connects; a site that is down refuses (ConnectException). */
    static Link open(String host, int port, int timeoutMillis) throws IOException {
        Socket socket = new Socket();
        try {
            socket.connect(new InetSocketAddress(host, port), timeoutMillis);
            socket.setTcpNoDelay(true);
            return new Link(socket);
        } catch (IOException e) {
            socket.close();
            throw e;
        }
    }

    /** Sets the read timeout (0 = none). */
    void timeout(int millis) throws IOException {
        socket.setSoTimeout(millis);
    }

    /** Sends one message; a dead connection is ignored (the reader notices it). */
    synchronized void send(String... fields) {
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < fields.length; i++) {
            if (i > 0) {
                line.append('\t');
            }
            line.append(URLEncoder.encode(fields[i] == null ? "" : fields[i], StandardCharsets.UTF_8));
        }
        try {
            out.write(line.append('\n').toString());
            out.flush();
        } catch (IOException e) {
            // The reader thread reports the lost connection.
        }
    }

    /** The next message's fields, or null at end of stream. */
    String[] read() throws IOException {
        String line = in.readLine();
        if (line == null) {
            return null;
        }
        String[] fields = line.split("\t", -1);
        for (int i = 0; i < fields.length; i++) {
            fields[i] = URLDecoder.decode(fields[i], StandardCharsets.UTF_8);
        }
        return fields;
    }

    /**
     * An agent login on a DN (W5), answered by the deployment on the event
     * stream ({@code AGENTLOGIN dn [error]}): blocks until then, as an AIL
     * request does until T-Server answers; a refusal is an exception.
     */
    void agentLogin(String dn, String queue, AgentWorkmode workmode, Map<String, String> reasons) throws Exception {
        CompletableFuture<String> answer = new CompletableFuture<>();
        logins.put(dn, answer);
        StringBuilder r = new StringBuilder();
        if (reasons != null) {
            reasons.forEach((k, v) -> r.append(r.length() == 0 ? "" : ",").append(k).append('=').append(v));
        }
        send("AGENTLOGIN", dn, queue, workmode == null ? "" : workmode.name(), r.toString());
        String error;
        try {
            error = answer.get(10, TimeUnit.SECONDS);
        } catch (TimeoutException | ExecutionException e) {
            throw new Exception("no answer to the login on DN " + dn);
        } finally {
            logins.remove(dn, answer);
        }
        if (!error.isEmpty()) {
            throw new Exception(error);
        }
    }

    /** The deployment answered a login ({@code error} empty = done). */
    void loginAnswered(String dn, String error) {
        CompletableFuture<String> answer = logins.get(dn);
        if (answer != null) {
            answer.complete(error);
        }
    }

    /** The connection is gone: every waiting login fails. */
    void failLogins(String why) {
        logins.values().forEach(a -> a.complete(why));
    }

    void close() {
        try {
            socket.close();
        } catch (IOException e) {
            // already closed
        }
    }
}
