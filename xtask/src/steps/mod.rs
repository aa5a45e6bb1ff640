//! The steps of the graph's nodes: install a profile, zip application
//! code, check a function, smoke-import it. Each works on plain inputs and
//! writes into the directory it is given; none knows the graph.

pub mod builder;
pub mod check;
pub mod fetched;
pub mod finish;
pub mod install;
pub mod launch;
pub mod layout;
pub mod package;
pub mod runtime_env;
pub mod samples;
pub mod sandbox;
pub mod smoke;
