//! The steps wing: what each node of the graph does: install a profile,
//! zip application code, check a function against Lambda's limits and its
//! budget, smoke-import it; and, beside the graph, `audit`'s work on what
//! ships against OSV's advisories (`audit`, `osv`). Each works on plain inputs and writes into the
//! directory it is given; none knows the graph. Imports the local Lambda, Python, containment, configuration,
//! store and the ground floor.

pub mod audit;
pub mod builder;
pub mod fetched;
pub mod finish;
pub mod finished;
pub mod image;
pub mod install;
pub mod licenses;
pub mod limits;
pub mod osv;
pub mod package;
pub mod sbom;
pub mod smoke;
