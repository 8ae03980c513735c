//! Sources: tasks that read the router and the nodes and send raw samples. They know nothing of the UI.

pub mod parse;
