package com.genesyslab.ail;

/** Stand-in for AIL's agent work mode after a login (W5; ASSUMED name and shape). */
public enum AgentWorkmode { UNKNOWN, AUTO_IN, MANUAL_IN, AFTER_CALL_WORK }
