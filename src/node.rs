//! One node lifecycle.
