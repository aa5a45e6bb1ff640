//! Finding a Python of the runtime's exact minor version on the host, for
//! hash-based bytecode, parsing the sources and the smoke test (bytecode and
//! import behaviour differ between minor versions), and what it is: the
//! real binary that runs and its full version, never the path a version
//! manager's shim answers on.

use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::facts::Runtime;
use crate::store::tools::{Fact, Planned, Tools};

/// How the xtask runs an interpreter's own tools (`compileall`, the
/// analysis of the sources): isolated (`-I`: none of the caller's PYTHON*
/// variables, no user site-packages) and without `site` (`-S`: no `.pth`
/// file of the installation runs first, which also saves each start the
/// imports a version manager's packages add).
pub const TOOL_FLAGS: [&str; 2] = ["-I", "-S"];

/// `python3.X` on PATH, else `python3` if it is 3.X, else what `uv python
/// find` knows of. Returns the real binary that runs (`sys.executable`, its
/// links resolved), so that later runs skip any version-manager shim in
/// front of it and keys name what runs. `None` when there is no such Python
/// here.
pub fn find_interpreter(
    sh: &Shell,
    tools: &Tools,
    runtime: Runtime,
    uv: Option<&Path>,
) -> Planned<Option<PathBuf>> {
    let wanted = runtime.python_version();
    let probe = |program: &Path| -> Option<PathBuf> {
        let script =
            "import os, sys; print('%d.%d' % sys.version_info[:2]); print(os.path.realpath(sys.executable))";
        let output = cmd!(sh, "{program} -c {script}")
            .quiet()
            .ignore_status()
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut lines = text.lines();
        let matches = output.status.success() && lines.next() == Some(wanted.as_str());
        let executable = lines.next().filter(|path| !path.is_empty()).map(PathBuf::from);
        matches.then(|| executable.unwrap_or_else(|| program.to_path_buf()))
    };
    let label = format!("python{wanted}");
    for candidate in [format!("python{wanted}"), "python3".to_string()] {
        let found = tools.about_program(sh, &label, Path::new(&candidate), |resolved| {
            probe(resolved).map(|path| path.display().to_string())
        });
        match found {
            Fact::Known(path) => return Planned::Ready(Some(PathBuf::from(path))),
            Fact::Unprobed => return Planned::Pending(format!("would look for Python {wanted}")),
            Fact::Absent => {}
        }
    }
    let Some(uv) = uv else {
        return Planned::Ready(None);
    };
    if !tools.probe {
        return Planned::Pending(format!("would ask uv for Python {wanted}"));
    }
    let output = cmd!(sh, "{uv} python find --no-python-downloads {wanted}")
        .quiet()
        .ignore_status()
        .output();
    let found = match output {
        Ok(output) if output.status.success() => {
            probe(Path::new(String::from_utf8_lossy(&output.stdout).trim()))
        }
        _ => None,
    };
    Planned::Ready(found)
}

/// The implementation and full version of `python` as it reports them
/// (`CPython 3.11.7 (main, …) [GCC 12.2.0]`), remembered by its binary
/// (and its environment, should it be a shim): bytecode compiled by two
/// builds may differ, so it enters the keys of what that interpreter
/// compiles, parses or runs.
pub fn full_version(sh: &Shell, tools: &Tools, python: &Path) -> Planned<String> {
    let script =
        "import platform, sys; print(platform.python_implementation(), ' '.join(sys.version.split()))";
    let fact = tools.about_program(sh, "python-identity", python, |resolved| {
        let output = cmd!(sh, "{resolved} -c {script}")
            .quiet()
            .ignore_status()
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !version.is_empty()).then_some(version)
    });
    match fact {
        Fact::Known(version) => Planned::Ready(version),
        Fact::Absent => Planned::Ready("unknown".to_string()),
        Fact::Unprobed => Planned::Pending(format!("would ask {} for its version", python.display())),
    }
}
