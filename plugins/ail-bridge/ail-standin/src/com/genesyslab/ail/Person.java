package com.genesyslab.ail;

import java.util.Map;

/** Stand-in for AIL's Person object: only its annex. */
public final class Person {
    private final String userName;
    private final Map<String, Map<String, String>> annex;

    Person(String userName, Map<String, Map<String, String>> annex) {
        this.userName = userName;
        this.annex = annex;
    }

    /** The user name. */
    public String getUserName() {
        return userName;
    }

    /** The annex: section -> option -> value. */
    public Map<String, Map<String, String>> getAnnex() {
        return annex;
    }
}
