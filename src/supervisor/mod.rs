//! The supervisor: spawns and watches the node processes.
