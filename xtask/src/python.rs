//! Finding a Python of the runtime's exact minor version on the host, for
//! hash-based bytecode and the smoke test (bytecode and import behaviour
//! differ between minor versions).

use std::path::PathBuf;

use xshell::{cmd, Shell};

use crate::facts::Runtime;

/// `python3.X` on PATH, else `python3` if it is 3.X, else what `uv python
/// find` knows of.
pub fn find_interpreter(sh: &Shell, runtime: Runtime, uv: Option<&std::path::Path>) -> Option<PathBuf> {
    let wanted = runtime.python_version();
    let version_of = |program: &std::path::Path| -> Option<String> {
        let script = "import sys; print('%d.%d' % sys.version_info[:2])";
        let output = cmd!(sh, "{program} -c {script}")
            .quiet()
            .ignore_status()
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    for candidate in [format!("python{wanted}"), "python3".to_string()] {
        let path = PathBuf::from(&candidate);
        if version_of(&path).as_deref() == Some(wanted.as_str()) {
            return Some(path);
        }
    }
    let uv = uv?;
    let output = cmd!(sh, "{uv} python find --no-python-downloads {wanted}")
        .quiet()
        .ignore_status()
        .output()
        .ok()?;
    let found = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && version_of(&found).as_deref() == Some(wanted.as_str())).then_some(found)
}
