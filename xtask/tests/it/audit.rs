//! `audit` on the standard application (core ships `tool` 1.0 from a
//! local wheel) against OSV exports the tests write: as a folder and as a
//! ZIP, with an advisory for `tool` 1.0, its alias, a withdrawn one, one
//! for the runtime's boto3 and one for another package. The threshold,
//! ignores and their expiry, the named skip without a database, and a
//! corrupt export.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::{App, Repo};

/// GitHub's advisory for `tool` < 1.1, rated HIGH.
const GHSA: &str = "GHSA-test-tool-0001";

/// The records of the export, as (file name, JSON).
fn records() -> Vec<(String, String)> {
    let boto3 = facts_boto3_version();
    let records = [
        (
            GHSA.to_string(),
            serde_json::json!({
                "id": GHSA,
                "aliases": ["CVE-2026-0001"],
                "summary": "tool runs what it is given",
                "database_specific": {"severity": "HIGH"},
                "affected": [{
                    "package": {"ecosystem": "PyPI", "name": "Tool"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}],
                }],
            }),
        ),
        (
            "PYSEC-2026-1".to_string(),
            serde_json::json!({
                "id": "PYSEC-2026-1",
                "aliases": ["CVE-2026-0001", GHSA],
                "affected": [{
                    "package": {"ecosystem": "PyPI", "name": "tool"},
                    "versions": ["1.0"],
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0.5"}, {"fixed": "1.1"}]}],
                }],
            }),
        ),
        (
            "GHSA-test-withdrawn".to_string(),
            serde_json::json!({
                "id": "GHSA-test-withdrawn",
                "withdrawn": "2026-01-01T00:00:00Z",
                "database_specific": {"severity": "CRITICAL"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "tool"}, "versions": ["1.0"]}],
            }),
        ),
        (
            "GHSA-test-boto3".to_string(),
            serde_json::json!({
                "id": "GHSA-test-boto3",
                "database_specific": {"severity": "LOW"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "boto3"}, "versions": [boto3]}],
            }),
        ),
        (
            "GHSA-test-other".to_string(),
            serde_json::json!({
                "id": "GHSA-test-other",
                "database_specific": {"severity": "CRITICAL"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "unshipped"}, "versions": ["1.0"]}],
            }),
        ),
    ];
    records
        .into_iter()
        .map(|(id, record)| (format!("{id}.json"), record.to_string()))
        .collect()
}

/// The boto3 version the tool's facts pin as the runtime's.
fn facts_boto3_version() -> String {
    let source = include_str!("../../src/facts/mod.rs");
    let line = source
        .lines()
        .find(|line| line.starts_with("pub const RUNTIME_BOTO3"))
        .expect("RUNTIME_BOTO3 in facts.rs");
    line.split("==")
        .nth(1)
        .unwrap()
        .trim_end_matches("\";")
        .to_string()
}

fn export_folder(repo: &Repo) -> PathBuf {
    let dir = repo.path().join("osv");
    for (name, record) in records() {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), record).unwrap();
    }
    dir
}

fn export_zip(repo: &Repo) -> PathBuf {
    let path = repo.path().join("all.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    for (name, record) in records() {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(record.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn audit(repo: &Repo, db: &Path, args: &[&str]) -> crate::support::Run {
    audit_on(repo, db, args, "")
}

/// As [`audit`], on the day `today` (`XTASK_TODAY`; empty: today).
fn audit_on(repo: &Repo, db: &Path, args: &[&str], today: &str) -> crate::support::Run {
    let mut line = vec!["audit", "--builder", "host"];
    line.extend(args);
    repo.xtask_with(
        &line,
        &[("XTASK_OSV_DB", db.to_str().unwrap()), ("XTASK_TODAY", today)],
    )
}

#[test]
fn an_advisory_for_a_shipped_version_is_found_with_its_id_aliases_and_fixed_version() {
    let repo = App::standard().repo();
    for db in [export_folder(&repo), export_zip(&repo)] {
        let run = audit(&repo, &db, &[]);
        run.success();
        let text = run.stderr();
        assert!(
            text.contains(&format!("HIGH {GHSA} (CVE-2026-0001, PYSEC-2026-1): tool 1.0")),
            "{text}"
        );
        assert!(text.contains("fixed in: 1.1"), "{text}");
        assert!(text.contains("ships in hello (layers: core)"), "{text}");
        assert!(
            text.contains("LOW GHSA-test-boto3"),
            "the runtime's boto3: {text}"
        );
        assert!(text.contains("ships in hello (layers: (runtime))"), "{text}");
        assert!(!text.contains("GHSA-test-withdrawn"), "withdrawn: {text}");
        assert!(!text.contains("GHSA-test-other"), "not shipped: {text}");
        assert!(
            text.contains("5 record(s) read, 1 withdrawn left out): 2 finding(s)"),
            "{text}"
        );
    }
    let recorded: serde_json::Value = serde_json::from_slice(&repo.read("dist/audit.json")).unwrap();
    assert_eq!(recorded["findings"][0]["id"], GHSA);
    assert_eq!(recorded["findings"][0]["fixed"], serde_json::json!(["1.1"]));
    assert_eq!(recorded["findings"][0]["functions"], serde_json::json!(["hello"]));
    // Named by its path in the repository: no path of this machine is kept.
    assert_eq!(recorded["source"], "the OSV export all.zip (XTASK_OSV_DB)");
    let page = String::from_utf8(repo.read("dist/report.html")).unwrap();
    assert!(
        page.contains(&format!("data-id=\"{GHSA}\"")),
        "the report shows it"
    );

    // The same as JSON on stdout, byte for byte what was written.
    let run = audit(&repo, &export_folder(&repo), &["--json", "-q"]);
    run.success();
    assert_eq!(
        run.stdout().trim(),
        String::from_utf8(repo.read("dist/audit.json")).unwrap().trim()
    );

    // A build keeps it, and the page still shows it: it describes what ships.
    repo.xtask(&["package", "--builder", "host", "-q"]).success();
    assert!(repo.path().join("dist/audit.json").exists());
}

#[test]
fn the_threshold_fails_at_or_below_the_finding_and_ignores_hold_until_their_date() {
    let repo = App::standard().repo();
    let db = export_zip(&repo);
    for (deny, code) in [("LOW", 1), ("MODERATE", 1), ("high", 1), ("CRITICAL", 0)] {
        let run = audit(&repo, &db, &["--deny", deny]);
        assert_eq!(run.code(), code, "--deny {deny}\n{}", run.stderr());
    }
    audit(&repo, &db, &["--deny", "HIGH"]).fails_with(1, "fails: at or above HIGH");
    audit(&repo, &db, &["--deny", "SEVERE"]).fails_with(2, "--deny: unknown severity `SEVERE`");

    let configured = |ignore: &str| {
        App::standard()
            .section("audit", &["deny = \"HIGH\"", &format!("ignore = [{ignore}]")])
            .metadata()
    };
    // The last day of an ignore still holds; the day after, it counts again.
    repo.set_metadata(&configured(
        "{ id = \"CVE-2026-0001\", reason = \"tool never runs input\", until = \"2027-01-31\" }",
    ));
    let run = audit_on(&repo, &db, &[], "2027-01-31");
    run.success();
    assert!(
        run.stderr()
            .contains("ignored until 2027-01-31: tool never runs input"),
        "{}",
        run.stderr()
    );
    audit_on(&repo, &db, &[], "2027-02-01").fails_with(
        1,
        "ignore expired on 2027-01-31 (tool never runs input): it counts again",
    );

    repo.set_metadata(&configured(
        "{ id = \"GHSA-nothing\", reason = \"old\", until = \"2999-12-31\" }, { id = \"CVE-2026-0001\", reason = \"r\", until = \"2999-12-31\" }",
    ));
    let run = audit(&repo, &db, &[]);
    run.success();
    assert!(
        run.stderr().contains("the ignore of `GHSA-nothing`"),
        "{}",
        run.stderr()
    );

    repo.set_metadata(&configured("{ id = \"GHSA-x\", until = \"2999-12-31\" }"));
    audit(&repo, &db, &[]).fails_with(2, "workspace.metadata.lambda.audit.ignore[0].reason: missing");
}

#[test]
fn no_database_is_a_named_skip_with_its_own_exit_code_and_a_corrupt_export_is_named() {
    let repo = App::standard().repo();
    // Nothing listens on port 9 of this machine's loopback (discard is never on).
    let run = repo.xtask_with(
        &["audit", "--builder", "host", "--deny", "LOW"],
        &[("XTASK_OSV_DB", ""), ("XTASK_OSV_API", "http://127.0.0.1:9")],
    );
    run.fails_with(
        3,
        "audit: skipped: no advisory database: OSV's API unreachable (http://127.0.0.1:9/v1/querybatch: ",
    );
    assert!(
        run.stderr().contains("and XTASK_OSV_DB not set"),
        "{}",
        run.stderr()
    );
    assert!(
        !repo.path().join("dist/audit.json").exists(),
        "a skip records no audit"
    );

    let db = export_folder(&repo);
    fs::write(db.join("GHSA-broken.json"), "{\"id\": ").unwrap();
    let run = audit(&repo, &db, &[]);
    run.fails_with(2, "XTASK_OSV_DB: ");
    assert!(
        run.stderr().contains("GHSA-broken.json: not an OSV record"),
        "{}",
        run.stderr()
    );
    let stderr = run.stderr();
    let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr());

    audit(&repo, &repo.path().join("missing.zip"), &[]).fails_with(2, "missing.zip");
}

/// OSV's API answered by a stand-in on 127.0.0.1, through the curl the
/// tool sends every request with: `cargo xtask ci` runs this group where
/// curl is installed (`-- --ignored needs_curl`); without curl it fails.
mod needs_curl {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::{records, GHSA};
    use crate::support::App;

    /// Serves `/v1/querybatch` (every query answered with the advisories
    /// of the exports that name its package) and `/v1/vulns/<id>`, or
    /// `status` to everything; records each request line and body.
    fn fake_osv(status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                log.lock().unwrap().push(format!("{} {body}", line.trim()));
                let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                let answer = if path == "/v1/querybatch" {
                    let queries: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let results: Vec<serde_json::Value> = queries["queries"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|query| {
                            let name = query["package"]["name"].as_str().unwrap();
                            let vulns: Vec<serde_json::Value> = records()
                                .into_iter()
                                .filter(|(_, record)| {
                                    record.to_lowercase().contains(&format!("\"name\":\"{name}\""))
                                })
                                .map(|(file, _)| serde_json::json!({"id": file.trim_end_matches(".json")}))
                                .collect();
                            serde_json::json!({ "vulns": vulns })
                        })
                        .collect();
                    serde_json::json!({ "results": results }).to_string()
                } else {
                    let id = path.trim_start_matches("/v1/vulns/");
                    records()
                        .into_iter()
                        .find(|(file, _)| file.trim_end_matches(".json") == id)
                        .map(|(_, record)| record)
                        .unwrap_or_else(|| "{}".to_string())
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        (url, seen)
    }

    fn require_curl() {
        let found = std::process::Command::new("curl").arg("--version").output();
        assert!(
            found.is_ok_and(|output| output.status.success()),
            "needs curl on PATH (apt-get install curl)"
        );
    }

    #[test]
    #[ignore = "needs curl"]
    fn osv_api_is_asked_in_one_batch_then_for_each_advisory() {
        require_curl();
        let repo = App::standard().repo();
        let (url, seen) = fake_osv(200);
        let run = repo.xtask_with(
            &["audit", "--builder", "host", "--deny", "HIGH"],
            &[("XTASK_OSV_DB", ""), ("XTASK_OSV_API", &url)],
        );
        run.fails_with(1, &format!("HIGH {GHSA} (CVE-2026-0001, PYSEC-2026-1): tool 1.0"));
        assert!(
            run.stderr().contains(&format!("OSV's API at {url}")),
            "{}",
            run.stderr()
        );
        let seen = seen.lock().unwrap().clone();
        assert!(seen[0].starts_with("POST /v1/querybatch "), "{seen:?}");
        assert!(
            seen[0].contains("{\"ecosystem\":\"PyPI\",\"name\":\"tool\"},\"version\":\"1.0\""),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|line| line.starts_with(&format!("GET /v1/vulns/{GHSA} "))),
            "{seen:?}"
        );

        let (url, _) = fake_osv(503);
        let run = repo.xtask_with(
            &["audit", "--builder", "host"],
            &[("XTASK_OSV_DB", ""), ("XTASK_OSV_API", &url)],
        );
        run.fails_with(
            3,
            &format!("OSV's API unreachable ({url}/v1/querybatch answered HTTP 503)"),
        );
    }
}
