//! drctl plugin ABI (in progress).
