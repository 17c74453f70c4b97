//! warp routes.
