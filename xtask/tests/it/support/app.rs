//! The standard test application, the world most test modules build on:
//!
//! ```toml
//! [workspace.metadata.lambda]
//! runtime = "python3.11"
//!
//! [workspace.metadata.lambda.layers.core]
//! requirements = "layers/core/requirements.txt"
//!
//! [workspace.metadata.lambda.layers.shared]
//! source = "lambdas/shared"
//!
//! [workspace.metadata.lambda.functions.hello]
//! source = "lambdas/hello"
//! handler = "hello.lambda_handler"
//! layers = ["core", "shared"]
//! ```
//!
//! with `core` installing `tool` 1.0 (`tool.py`: `X = 1`) from a local
//! wheel only, `shared/__init__.py` holding `NAME = 'shared'`, and `hello`
//! importing both ([`HELLO`]). A test that needs a variation says so with
//! the builder's methods (another setting, layer, function or key; core's
//! own requirements) and writes whatever files it wants on top of
//! [`App::repo`]'s; [`App::metadata`] is the configuration as text, for
//! tests that set it again or edit it.

use super::Repo;

/// `hello`'s handler module: it imports both of its layers.
pub const HELLO: &str =
    "import shared\nimport tool\n\n\ndef lambda_handler(event, context):\n    return tool.X\n";

/// The configuration and files of a test application (see the module).
#[derive(Clone, Debug)]
pub struct App {
    runtime: String,
    /// Lines of the top table, after `runtime`.
    settings: Vec<String>,
    /// Each table below the top one (`layers.core`, `functions.hello`) with
    /// its lines: the layers first, by name, then the functions in the order
    /// added.
    tables: Vec<(String, Vec<String>)>,
    /// core's requirements when they are not the standard ones (the test
    /// brings their wheels).
    core: Option<Vec<String>>,
}

impl App {
    /// The standard application (see the module).
    pub fn standard() -> App {
        App {
            runtime: "python3.11".to_string(),
            settings: Vec::new(),
            tables: Vec::new(),
            core: None,
        }
        .layer("core", &["requirements = \"layers/core/requirements.txt\""])
        .layer("shared", &["source = \"lambdas/shared\""])
        .function("hello", "hello.lambda_handler", &["core", "shared"])
    }

    /// Another `runtime` for the whole application.
    pub fn runtime(mut self, runtime: &str) -> App {
        self.runtime = runtime.to_string();
        self
    }

    /// A line of the top table (`budget = "50 MiB"`), after `runtime` and
    /// the settings before it.
    pub fn setting(mut self, line: &str) -> App {
        self.settings.push(line.to_string());
        self
    }

    /// Layer `name` with these lines: in place of the layer of that name,
    /// else among the layers in the order of their names.
    pub fn layer(self, name: &str, lines: &[&str]) -> App {
        let table = format!("layers.{name}");
        let at = self
            .tables
            .iter()
            .take_while(|(other, _)| other.starts_with("layers.") && *other < table)
            .count();
        self.table(&table, lines, at)
    }

    /// Function `name` in `lambdas/<name>`, with this handler and these
    /// layers: in place of the function of that name, else after the last.
    pub fn function(self, name: &str, handler: &str, layers: &[&str]) -> App {
        let at = self.tables.len();
        let source = format!("source = \"lambdas/{name}\"");
        let handler = format!("handler = \"{handler}\"");
        let layers = format!("layers = {layers:?}");
        self.table(&format!("functions.{name}"), &[&source, &handler, &layers], at)
    }

    /// Another table (`api`, `api.authorizer`) with these lines: in place
    /// of the table of that name, else after the last.
    pub fn section(self, table: &str, lines: &[&str]) -> App {
        let at = self.tables.len();
        self.table(table, lines, at)
    }

    /// One more line in the table `table` (`functions.hello`, `layers.core`).
    pub fn key(mut self, table: &str, line: &str) -> App {
        let (_, lines) = self
            .tables
            .iter_mut()
            .find(|(name, _)| name == table)
            .unwrap_or_else(|| panic!("the application has no table {table}"));
        lines.push(line.to_string());
        self
    }

    /// Without the table `table` (`functions.hello`, `layers.shared`).
    pub fn without(mut self, table: &str) -> App {
        let before = self.tables.len();
        self.tables.retain(|(name, _)| name != table);
        assert_ne!(before, self.tables.len(), "the application has no table {table}");
        self
    }

    /// `core` with these requirements instead of `tool==1.0` (still from its
    /// wheels folder only); the test writes the wheels they need.
    pub fn core(mut self, requirements: &[&str]) -> App {
        self.core = Some(requirements.iter().map(|line| line.to_string()).collect());
        self
    }

    /// The `[workspace.metadata.lambda]` tables, as [`Repo::new`] takes them.
    pub fn metadata(&self) -> String {
        let mut text = format!("\n[workspace.metadata.lambda]\nruntime = \"{}\"\n", self.runtime);
        for line in &self.settings {
            text.push_str(line);
            text.push('\n');
        }
        for (table, lines) in &self.tables {
            text.push_str(&format!("\n[workspace.metadata.lambda.{table}]\n"));
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// A new repository with this configuration and the standard files of
    /// what is left of the standard application: core's requirements (and
    /// `tool`'s wheel, unless [`App::core`] replaced them), `shared`'s
    /// package, and `hello`'s module ([`HELLO`], named by its handler).
    pub fn repo(&self) -> Repo {
        let repo = Repo::new(&self.metadata());
        if self.holds("layers.core", "requirements = \"layers/core/requirements.txt\"") {
            match &self.core {
                Some(requirements) => {
                    let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
                    repo.profile("core", &requirements);
                }
                None => {
                    repo.profile("core", &["tool==1.0"]);
                    repo.wheel("core", "tool", "1.0", &[("tool.py", "X = 1\n")], &[]);
                }
            }
        }
        if self.holds("layers.shared", "source = \"lambdas/shared\"") {
            repo.write("lambdas/shared/__init__.py", "NAME = 'shared'\n");
        }
        let hello_module = self.lines("functions.hello").iter().find_map(|line| {
            let handler = line.strip_prefix("handler = \"")?;
            Some(handler.split('.').next()?.to_string())
        });
        if let Some(module) = hello_module {
            repo.write(&format!("lambdas/hello/{module}.py"), HELLO);
        }
        repo
    }

    fn table(mut self, table: &str, lines: &[&str], at: usize) -> App {
        let lines: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
        match self.tables.iter_mut().find(|(name, _)| name == table) {
            Some((_, old)) => *old = lines,
            None => self.tables.insert(at, (table.to_string(), lines)),
        }
        self
    }

    fn lines(&self, table: &str) -> &[String] {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map_or(&[], |(_, lines)| lines.as_slice())
    }

    fn holds(&self, table: &str, line: &str) -> bool {
        self.lines(table).iter().any(|held| held == line)
    }
}
