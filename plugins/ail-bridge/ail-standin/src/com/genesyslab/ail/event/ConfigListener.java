package com.genesyslab.ail.event;

/** Stand-in for a Configuration Server change notification (E5; ASSUMED name and shape). */
public interface ConfigListener {
    /**
     * An option of a configuration object changed: its type ({@code PERSON},
     * {@code APPLICATION}), name, section, option and new value (null: deleted).
     */
    void configChanged(String objectType, String objectName, String section, String option, String value);
}
