//! One module per subcommand, each a target set of the build graph and a
//! way to show its result. Nothing imports a command.

pub mod build;
pub mod build_layers;
pub mod check_limits;
pub mod ci;
pub mod drive;
pub mod invoke;
pub mod lock;
pub mod package;
pub mod report;
pub mod smoke;
