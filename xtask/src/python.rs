//! Finding a Python of the runtime's exact minor version on the host, for
//! hash-based bytecode and the smoke test (bytecode and import behaviour
//! differ between minor versions).

use std::path::PathBuf;

use xshell::{cmd, Shell};

use crate::facts::Runtime;

/// `python3.X` on PATH, else `python3` if it is 3.X, else what `uv python
/// find` knows of. Returns the interpreter's own path (`sys.executable`), so
/// that later runs skip any version-manager shim in front of it.
pub fn find_interpreter(
    sh: &Shell,
    runtime: Runtime,
    uv: Option<&std::path::Path>,
    cache_dir: &std::path::Path,
) -> Option<PathBuf> {
    let wanted = runtime.python_version();
    let probe = |program: &std::path::Path| -> Option<PathBuf> {
        let script = "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)";
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
    for candidate in [format!("python{wanted}"), "python3".to_string()] {
        let label = format!("python{wanted}");
        let found = crate::cache::remembered(cache_dir, &label, &PathBuf::from(&candidate), |resolved| {
            probe(resolved).map(|path| path.display().to_string())
        });
        if let Some(found) = found {
            return Some(PathBuf::from(found));
        }
    }
    let uv = uv?;
    let output = cmd!(sh, "{uv} python find --no-python-downloads {wanted}")
        .quiet()
        .ignore_status()
        .output()
        .ok()?;
    let found = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if output.status.success() {
        probe(&found)
    } else {
        None
    }
}
