//! drctl configuration (in progress).
