//! Each command's typed arguments, built from what was given: the options
//! every command shares, and the command's own names and options.

use super::flags::{
    ALL, CHECK, DENY, DOCKER, ENV, EVENT, FAKES, LAYER, MAX_SIZE, OPEN, PORT, SAVE_EVENTS, UPGRADE,
    UPGRADE_PACKAGE, WATCH,
};
use super::{Common, Given};

/// A command over names it selects from (layers, functions): none means all.
pub struct NamesArgs {
    pub common: Common,
    pub names: Vec<String>,
}

impl From<Given> for NamesArgs {
    fn from(given: Given) -> NamesArgs {
        NamesArgs {
            common: given.common,
            names: given.names,
        }
    }
}

impl From<Given> for Common {
    fn from(given: Given) -> Common {
        given.common
    }
}

/// `build [--docker]`.
pub struct BuildArgs {
    pub common: Common,
    /// Load each image function's image into the engine.
    pub docker: bool,
}

impl From<Given> for BuildArgs {
    fn from(given: Given) -> BuildArgs {
        BuildArgs {
            docker: given.switch(&DOCKER),
            common: given.common,
        }
    }
}

/// `audit [FUNCTION...] [--deny SEVERITY]`.
pub struct AuditArgs {
    pub common: Common,
    /// None: all.
    pub functions: Vec<String>,
    /// As given; checked by the command.
    pub deny: Option<String>,
}

impl From<Given> for AuditArgs {
    fn from(given: Given) -> AuditArgs {
        AuditArgs {
            deny: given.value(&DENY),
            functions: given.names,
            common: given.common,
        }
    }
}

/// `invoke FUNCTION [--event FILE|-] | --all`.
pub struct InvokeArgs {
    pub common: Common,
    pub functions: Vec<String>,
    pub all: bool,
    /// A JSON file, or `-` for stdin.
    pub event: Option<String>,
    /// `KEY=VALUE`, as given.
    pub env: Vec<String>,
    /// `NAME=ZIP`, as given.
    pub layers: Vec<String>,
}

impl From<Given> for InvokeArgs {
    fn from(given: Given) -> InvokeArgs {
        InvokeArgs {
            all: given.switch(&ALL),
            event: given.value(&EVENT),
            env: given.values(&ENV),
            layers: given.values(&LAYER),
            functions: given.names,
            common: given.common,
        }
    }
}

/// `lock [PROFILE...] [--upgrade | --upgrade-package NAME] [--check]`.
pub struct LockArgs {
    pub common: Common,
    pub profiles: Vec<String>,
    pub check: bool,
    pub upgrade: bool,
    pub upgrade_packages: Vec<String>,
}

impl From<Given> for LockArgs {
    fn from(given: Given) -> LockArgs {
        LockArgs {
            check: given.switch(&CHECK),
            upgrade: given.switch(&UPGRADE),
            upgrade_packages: given.values(&UPGRADE_PACKAGE),
            profiles: given.names,
            common: given.common,
        }
    }
}

/// `report [--open]`.
pub struct ReportArgs {
    pub common: Common,
    pub open: bool,
}

impl From<Given> for ReportArgs {
    fn from(given: Given) -> ReportArgs {
        ReportArgs {
            open: given.switch(&OPEN),
            common: given.common,
        }
    }
}

/// `prune-cache [--max-size SIZE]`.
pub struct PruneCacheArgs {
    pub common: Common,
    /// As given; checked by the command.
    pub max_size: Option<String>,
}

impl From<Given> for PruneCacheArgs {
    fn from(given: Given) -> PruneCacheArgs {
        PruneCacheArgs {
            max_size: given.value(&MAX_SIZE),
            common: given.common,
        }
    }
}

/// `ci`: the harness reads the whole command line again.
pub struct CiArgs {
    pub line: Vec<String>,
}

impl From<Given> for CiArgs {
    fn from(given: Given) -> CiArgs {
        CiArgs { line: given.line }
    }
}

/// `serve [--port N] [--watch] [--fakes] [--env K=V] [--save-events DIR] [FUNCTION...]`.
pub struct ServeArgs {
    pub common: Common,
    /// None: all.
    pub functions: Vec<String>,
    /// As given; checked by the command.
    pub port: Option<String>,
    pub watch: bool,
    pub fakes: bool,
    /// `KEY=VALUE`, as given.
    pub env: Vec<String>,
    pub save_events: Option<String>,
}

impl From<Given> for ServeArgs {
    fn from(given: Given) -> ServeArgs {
        ServeArgs {
            port: given.value(&PORT),
            watch: given.switch(&WATCH),
            fakes: given.switch(&FAKES),
            env: given.values(&ENV),
            save_events: given.value(&SAVE_EVENTS),
            functions: given.names,
            common: given.common,
        }
    }
}
