//! One function running as in Lambda's execution environment: laid out by
//! `layout.rs`, its runtime started by `launch.rs` under AWS's runtime
//! interface client against a Runtime API served on 127.0.0.1.
//! [`Sandbox::init`] waits for the init phase, [`Sandbox::invoke`] sends one
//! event; errors come back as Lambda reports them.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::launch::{self, path_text, Launch, Start};
use super::layout::Layout;
use crate::contain::reaper::{self, Owned, Watched};
use crate::facts;
use crate::lambda::runtime_api::{Invocation, Message, Peers, RuntimeApi};
use crate::python::container::Engine;

/// How the init phase ended.
#[derive(Debug)]
pub enum Init {
    Ready { init_ms: f64 },
    Failed(Failure),
}

/// An error as Lambda reports it: its type (`Runtime.ImportModuleError`,
/// `Runtime.HandlerNotFound`, `KeyError`, `Sandbox.Timedout`…), its message
/// and stack.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Failure {
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "errorMessage")]
    pub message: String,
    #[serde(rename = "stackTrace", default)]
    pub stack: Vec<String>,
}

impl Failure {
    pub fn new(error_type: &str, message: String) -> Failure {
        Failure {
            error_type: error_type.to_string(),
            message,
            stack: Vec::new(),
        }
    }

    /// The body the runtime posted, or what it said if that is not the
    /// shape Lambda documents.
    fn from_body(error_type: String, body: &[u8]) -> Failure {
        let mut failure: Failure = serde_json::from_slice(body).unwrap_or_else(|_| Failure {
            message: String::from_utf8_lossy(body).into_owned(),
            ..Failure::default()
        });
        if !error_type.is_empty() && failure.error_type.is_empty() {
            failure.error_type = error_type;
        }
        failure
    }
}

/// How one invocation ended.
#[derive(Debug)]
pub struct Answer {
    pub request_id: String,
    pub duration_ms: f64,
    pub result: Result<Vec<u8>, Failure>,
}

impl Answer {
    /// Lambda's REPORT line.
    /// `memory_size_mb` is the function's configured memory, `used_mb` what
    /// the process reached.
    pub fn report_line(&self, memory_size_mb: u64, used_mb: Option<u64>, init_ms: Option<f64>) -> String {
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration_ms,
            self.duration_ms.ceil() as u64,
            memory_size_mb,
            used_mb.map_or("?".to_string(), |mb| mb.to_string()),
        );
        if let Some(init) = init_ms {
            line.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        line
    }
}

/// The running function.
pub struct Sandbox {
    api: RuntimeApi,
    child: Child,
    spawned: Instant,
    /// The runtime's process on this host (the container's first process).
    pid: Option<u32>,
    container: Option<(Engine, String)>,
    /// The runtime's process has been waited for: its pid (and process
    /// group) may now belong to another process.
    reaped: bool,
    /// Ended on SIGINT/SIGTERM: the process group, the container.
    _watched: Vec<Watched>,
    logs: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
    /// What each forwarded log line starts with (`[users 5f3c…]`): empty
    /// unless the start asked for labelled logs.
    label: Option<Arc<Mutex<String>>>,
    name: String,
    function_arn: String,
    /// Why the Runtime API refused connections (the first few it tells), for the
    /// message when the runtime fails.
    refused: Vec<String>,
    /// The layout's folders and where Lambda has them, for messages.
    paths: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// How long the log readers get to finish once the runtime has stopped.
const READERS_GRACE: Duration = Duration::from_millis(500);

/// How many lines of function output are kept for messages.
const LOG_TAIL: usize = 12;

/// Starts the runtime's Python with the runtime interface client.
pub fn start(start: &Start, layout: &Layout) -> Result<Sandbox> {
    let api = RuntimeApi::start()?;
    let Launch {
        mut command,
        container,
        notes,
    } = launch::command(start, layout, &api.address())?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = Instant::now();
    // Its own process group (see launch.rs): whatever the function starts
    // stays in it and is killed with it.
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let mut watched = vec![reaper::watch(Owned::Tree(child.id()))];
    match &container {
        None => api.admit(Peers::Tree(child.id())),
        Some((engine, name)) => {
            watched.push(reaper::watch(Owned::Container(
                engine.program.clone(),
                name.clone(),
            )));
            api.admit(Peers::container(engine.clone(), name.clone()));
        }
    }
    let logs: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let label = start
        .label_logs
        .then(|| Arc::new(Mutex::new(format!("[{}]", start.plan.name))));
    let mut readers = Vec::new();
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>),
    ];
    let paths = vec![
        (path_text(&layout.task), facts::TASK_ROOT.to_string()),
        (path_text(&layout.opt), facts::LAYER_MOUNT.to_string()),
    ];
    for stream in streams.into_iter().flatten() {
        let (logs, forward, paths) = (Arc::clone(&logs), start.forward_logs, paths.clone());
        let label = label.clone();
        readers.push(thread::spawn(move || {
            for_each_record(stream, |record| {
                // The runtime joins the lines of one error with `\r`; paths
                // are shown where Lambda has them.
                let text = String::from_utf8_lossy(record).replace('\r', "\n");
                let text = lambda_paths(&paths, &text);
                if forward {
                    match &label {
                        Some(label) => {
                            let label = label.lock().map(|l| l.clone()).unwrap_or_default();
                            for line in text.lines() {
                                eprintln!("{label} {line}");
                            }
                        }
                        None => eprintln!("{text}"),
                    }
                }
                let mut tail = logs.lock().expect("log tail");
                tail.extend(text.lines().map(str::to_string));
                while tail.len() > LOG_TAIL {
                    tail.pop_front();
                }
            });
        }));
    }
    let pid = container.is_none().then(|| child.id());
    let function_arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        facts::LOCAL_REGION,
        facts::LOCAL_ACCOUNT,
        start.plan.name
    );
    Ok(Sandbox {
        api,
        child,
        spawned,
        pid,
        container,
        reaped: false,
        _watched: watched,
        refused: Vec::new(),
        logs,
        readers,
        label,
        name: start.plan.name.clone(),
        function_arn,
        paths,
        notes,
    })
}

/// Each line the runtime writes, as it comes, and each record of its JSON
/// log format: that one writes a record per write with no newline (Lambda
/// frames them itself), and a line reader would hold every record back
/// until the runtime exits. A piece of a line is not a record: the runtime's
/// stdout writes (and flushes) each argument of a `print` on its own.
fn for_each_record(mut stream: impl Read, mut record: impl FnMut(&[u8])) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        pending.extend_from_slice(&buffer[..read]);
        let mut taken = 0;
        loop {
            let rest = &pending[taken..];
            if let Some(end) = json_record(rest) {
                record(&rest[..end]);
                taken += end;
            } else if let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
                if end > 0 {
                    record(&rest[..end]);
                }
                taken += end + 1;
            } else {
                break;
            }
        }
        pending.drain(..taken);
    }
    if !pending.is_empty() {
        record(&pending);
    }
}

/// The length of the JSON object `rest` starts with, when that object is a
/// record of the JSON log format: whole, and followed by nothing yet or by
/// the next record.
fn json_record(rest: &[u8]) -> Option<usize> {
    if rest.first() != Some(&b'{') {
        return None;
    }
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
    values.next()?.ok()?;
    let end = values.byte_offset();
    matches!(rest.get(end), None | Some(b'{')).then_some(end)
}

/// `text` with the layout's folders shown as Lambda's.
fn lambda_paths(paths: &[(String, String)], text: &str) -> String {
    paths
        .iter()
        .fold(text.to_string(), |text, (here, there)| text.replace(here, there))
}

/// What came while waiting.
enum Waited {
    Message(Message),
    Exited(ExitStatus),
    TimedOut,
}

impl Sandbox {
    /// Waits for the init phase: the handler imported (the runtime asks for
    /// its first event) or an init error, within Lambda's 10 s.
    pub fn init(&mut self) -> Init {
        let limit = Duration::from_secs(facts::INIT_TIMEOUT_S);
        let deadline = Instant::now() + limit;
        loop {
            return match self.wait(deadline) {
                Waited::Message(Message::Next(at)) => {
                    if let Some((engine, name)) = &self.container {
                        self.pid = engine.host_pid(name);
                    }
                    Init::Ready {
                        init_ms: self.init_ms(at),
                    }
                }
                Waited::Message(Message::InitError { error_type, body }) => {
                    Init::Failed(self.as_lambda_says(Failure::from_body(error_type, &body)))
                }
                Waited::Message(_) => continue,
                Waited::Exited(status) => Init::Failed(self.exited(status)),
                Waited::TimedOut => Init::Failed(Failure::new(
                    "Sandbox.Timedout",
                    format!("the init phase did not finish within {} s", limit.as_secs()),
                )),
            };
        }
    }

    /// Sends one event and waits for the answer, at most `timeout`; a
    /// function still running then is stopped, as Lambda stops it.
    pub fn invoke(&mut self, event: &[u8], timeout: Duration) -> Answer {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        if let Some(label) = &self.label {
            if let Ok(mut label) = label.lock() {
                *label = format!("[{} {request_id}]", self.name);
            }
        }
        let sent = Instant::now();
        self.api.push(Invocation {
            request_id: request_id.clone(),
            body: event.to_vec(),
            function_arn: self.function_arn.clone(),
            timeout,
        });
        let deadline = sent + timeout;
        let result = loop {
            match self.wait(deadline) {
                Waited::Message(Message::Response { request_id: id, body }) if id == request_id => {
                    break Ok(body)
                }
                Waited::Message(Message::Error {
                    request_id: id,
                    error_type,
                    body,
                }) if id == request_id => {
                    break Err(self.as_lambda_says(Failure::from_body(error_type, &body)))
                }
                Waited::Message(_) => continue,
                Waited::Exited(status) => break Err(self.exited(status)),
                Waited::TimedOut => {
                    self.stop();
                    break Err(Failure::new(
                        "Sandbox.Timedout",
                        format!("Task timed out after {}.00 seconds", timeout.as_secs()),
                    ));
                }
            }
        };
        Answer {
            request_id,
            duration_ms: sent.elapsed().as_secs_f64() * 1000.0,
            result,
        }
    }

    /// Whether the runtime has stopped (timed out, crashed, or exited): an
    /// environment that cannot take another event.
    pub fn ended(&mut self) -> bool {
        self.reaped || self.runtime_exited().is_some()
    }

    /// The most memory the runtime's process has used, MB, as Lambda's
    /// REPORT line counts it.
    pub fn max_memory_mb(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb.div_ceil(1024))
    }

    /// The last lines the function printed.
    pub fn log_tail(&self) -> Vec<String> {
        self.logs
            .lock()
            .map(|tail| tail.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn wait(&mut self, deadline: Instant) -> Waited {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.api.receive(left.min(Duration::from_millis(20))) {
                Some(Message::Refused(why)) => self.refused.push(why),
                Some(message) => return Waited::Message(message),
                None => {}
            }
            if let Some(status) = self.runtime_exited() {
                // What it posted before it exited comes first.
                return match self.api.receive(Duration::from_millis(50)) {
                    Some(message) => Waited::Message(message),
                    None => Waited::Exited(status),
                };
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut;
            }
        }
    }

    /// Init duration: from the process's start to its first request for
    /// work. In a container the process starts after the engine's own
    /// start-up, which does not count: the kernel's start time of the
    /// runtime's process does.
    fn init_ms(&self, at: Instant) -> f64 {
        let spawned = at.duration_since(self.spawned).as_secs_f64() * 1000.0;
        if self.container.is_none() {
            return spawned;
        }
        self.pid
            .and_then(process_age_ms)
            .map(|age| (age - Instant::now().duration_since(at).as_secs_f64() * 1000.0).max(0.0))
            .unwrap_or(spawned)
    }

    /// The failure with Lambda's paths instead of the layout's, and without
    /// the import machinery's frames.
    fn as_lambda_says(&self, mut failure: Failure) -> Failure {
        let paths = |text: &str| lambda_paths(&self.paths, text);
        failure.message = paths(&failure.message);
        failure.stack = failure
            .stack
            .iter()
            .filter(|frame| !frame.contains("File \"<frozen "))
            .map(|frame| paths(frame))
            .collect();
        failure
    }

    fn exited(&mut self, status: ExitStatus) -> Failure {
        self.finish_readers();
        let tail = self.log_tail();
        let mut message = format!("Runtime exited with error: {status}");
        if !tail.is_empty() {
            message = format!("{message}; it printed: {}", tail.join(" | "));
        }
        if let Some(why) = self.refused.first() {
            message = format!("{message}; the Runtime API refused a connection: {why}");
        }
        Failure::new("Runtime.ExitError", message)
    }

    /// The runtime's exit status once it has exited. What it started is
    /// ended first, while its pid (a zombie until waited for) still holds
    /// the number of its process group.
    fn runtime_exited(&mut self) -> Option<ExitStatus> {
        if self.reaped {
            return self.child.try_wait().ok().flatten();
        }
        // SAFETY: waitid only writes into `info`; WNOWAIT leaves the child
        // to be waited for below.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) == 0 && info.si_pid() != 0
        };
        if !exited {
            return None;
        }
        self.stop();
        self.child.try_wait().ok().flatten()
    }

    /// Ends the runtime's whole process tree (and its container), then
    /// waits for the runtime's process.
    fn stop(&mut self) {
        if self.reaped {
            return;
        }
        if let Some((engine, name)) = &self.container {
            engine.remove(name);
        }
        reaper::end_tree(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Lets the log readers take the last lines. A process the function
    /// started may still hold its output open: after a short wait the
    /// readers are left to end with it, not waited for.
    fn finish_readers(&mut self) {
        let deadline = Instant::now() + READERS_GRACE;
        while Instant::now() < deadline && !self.readers.iter().all(JoinHandle::is_finished) {
            thread::sleep(Duration::from_millis(5));
        }
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
        self.finish_readers();
    }
}

/// How long ago a process started, from the kernel's clock ticks (10 ms).
fn process_age_ms(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    const TICKS_PER_SECOND: f64 = 100.0;
    Some((uptime - start_ticks / TICKS_PER_SECOND) * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::for_each_record;

    /// Hands out its writes one read at a time, as a pipe does.
    struct Writes(Vec<&'static str>);

    impl std::io::Read for Writes {
        fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let write = self.0.remove(0).as_bytes();
            into[..write.len()].copy_from_slice(write);
            Ok(write.len())
        }
    }

    #[test]
    fn a_json_record_written_without_a_newline_is_told_as_it_comes() {
        let writes = Writes(vec!["{\"a\": 1}", "{\"b\": 2}", "[INFO] x\n[INFO] y\n"]);
        let mut records = Vec::new();
        for_each_record(writes, |record| {
            records.push(String::from_utf8_lossy(record).into_owned())
        });
        assert_eq!(records, ["{\"a\": 1}", "{\"b\": 2}", "[INFO] x", "[INFO] y"]);
    }

    /// `print("holding", 7598)` under the runtime: one write per argument.
    #[test]
    fn the_pieces_of_a_printed_line_are_one_record() {
        let writes = Writes(vec!["holding", " ", "7598", "\n", "done\n"]);
        let mut records = Vec::new();
        for_each_record(writes, |record| {
            records.push(String::from_utf8_lossy(record).into_owned())
        });
        assert_eq!(records, ["holding 7598", "done"]);
    }

    /// Two JSON records read at once, a record read in two pieces, and a
    /// line that only starts with an object.
    #[test]
    fn json_records_are_told_apart_however_they_are_read() {
        let writes = Writes(vec![
            "{\"a\": 1}{\"b\": \"}{\"}",
            "{\"c\": ",
            "3}",
            "{\"d\": 4} and text\n",
        ]);
        let mut records = Vec::new();
        for_each_record(writes, |record| {
            records.push(String::from_utf8_lossy(record).into_owned())
        });
        assert_eq!(
            records,
            [
                "{\"a\": 1}",
                "{\"b\": \"}{\"}",
                "{\"c\": 3}",
                "{\"d\": 4} and text"
            ]
        );
    }
}
