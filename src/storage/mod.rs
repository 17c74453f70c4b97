//! fjall storage.
