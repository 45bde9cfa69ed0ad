//! The domain: key events, the key read model that projects them, and the pure rules that decide
//! what an operation may do to a key. Nothing here does I/O.

pub mod events;
pub mod key;
pub mod policy;
pub mod read_model;
pub mod rules;
