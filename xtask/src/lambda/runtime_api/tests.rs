//! The Runtime API against the runtime's own requests and against hostile
//! ones: random bytes, truncated requests, huge lengths and chunk sizes,
//! many idle connections, and a process that is not the runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// The test process stands in for the runtime.
fn started(limits: Limits) -> RuntimeApi {
    let api = RuntimeApi::start_with(limits, MAX_CONNECTIONS).unwrap();
    api.admit(Peers::Tree(std::process::id()));
    api
}

fn invocation(id: &str) -> Invocation {
    Invocation {
        request_id: id.into(),
        body: br#"{"x":1}"#.to_vec(),
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        timeout: Duration::from_secs(3),
    }
}

/// Sends `request`, reads one answer (after an interim `100 Continue`).
fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line.is_empty() || line == "\r\n" && !head.ends_with("100 Continue\r\n\r\n") {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

/// Everything the server sends until it closes the connection, with a
/// bound far above any of its own limits.
fn until_closed(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut seen = Vec::new();
    let closed = stream.read_to_end(&mut seen);
    assert!(
        !matches!(&closed, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
        "the server held the connection: {}",
        String::from_utf8_lossy(&seen)
    );
    String::from_utf8_lossy(&seen).into_owned()
}

/// One whole invocation, as the runtime does it: the server still works.
fn runtime_round(api: &RuntimeApi, id: &str) {
    api.push(invocation(id));
    let mut stream = TcpStream::connect(api.address()).unwrap();
    let next = exchange(
        &mut stream,
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n",
    );
    assert!(
        next.contains(&format!("Lambda-Runtime-Aws-Request-Id: {id}")),
        "{next}"
    );
    let request =
        format!("POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    let posted = exchange(&mut stream, request.as_bytes());
    assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(Message::Response { request_id, body }) = api.receive(Duration::from_millis(100)) {
            if request_id == id {
                assert_eq!(body, b"ok");
                return;
            }
        }
    }
    panic!("no response for {id}");
}

#[test]
fn serves_an_event_and_takes_its_answer_on_one_connection() {
    let api = started(LIMITS);
    api.push(invocation("r-1"));
    let mut stream = TcpStream::connect(api.address()).unwrap();
    let next = exchange(
        &mut stream,
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
    assert!(next.contains("Lambda-Runtime-Aws-Request-Id: r-1"), "{next}");
    assert!(next.ends_with(r#"{"x":1}"#), "{next}");
    assert!(matches!(
        api.receive(Duration::from_secs(5)),
        Some(Message::Next(_))
    ));
    // Chunked, with Expect: the shapes curl may use.
    let posted = exchange(
        &mut stream,
        b"POST /2018-06-01/runtime/invocation/r-1/error HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nLambda-Runtime-Function-Error-Type: Runtime.Oops\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert!(
        posted.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202"),
        "{posted}"
    );
    match api.receive(Duration::from_secs(5)) {
        Some(Message::Error {
            request_id,
            error_type,
            body,
        }) => {
            assert_eq!(request_id, "r-1");
            assert_eq!(error_type, "Runtime.Oops");
            assert_eq!(body, b"abcde");
        }
        other => panic!("{other:?}"),
    }
    let unknown = exchange(&mut stream, b"GET /elsewhere HTTP/1.1\r\n\r\n");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
}

/// Sizes a client claims are checked, never allocated: each of these
/// aborted or panicked the server before.
#[test]
fn claimed_sizes_are_refused_not_allocated() {
    let api = started(LIMITS);
    let over = facts::MAX_SYNC_RESPONSE_BYTES + 1;
    let cases: Vec<(String, &str)> = vec![
        (
            "POST /2018-06-01/runtime/invocation/r-1/response HTTP/1.1\r\nContent-Length: 1099511627776\r\n\r\n".into(),
            "HTTP/1.1 413",
        ),
        (
            "POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".into(),
            "HTTP/1.1 400",
        ),
        (
            "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n".into(),
            "HTTP/1.1 400",
        ),
        (
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab".into(),
            "HTTP/1.1 413",
        ),
        (
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\nffffffffffffffff\r\n".into(),
            "HTTP/1.1 413",
        ),
        (
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n".into(),
            "HTTP/1.1 400",
        ),
        (
            format!("POST /2018-06-01/runtime/invocation/r-2/error HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {over}\r\n\r\n"),
            "HTTP/1.1 413",
        ),
        (format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000)), "HTTP/1.1 431"),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(1000)),
            "HTTP/1.1 431",
        ),
    ];
    for (request, expected) in cases {
        let mut stream = TcpStream::connect(api.address()).unwrap();
        let _ = stream.write_all(request.as_bytes());
        let answer = until_closed(&mut stream);
        assert!(answer.starts_with(expected), "{answer} for {:.200}", request);
    }
    // A response over the limit ends its invocation as Lambda ends it.
    let mut too_large = Vec::new();
    while let Some(message) = api.receive(Duration::from_millis(200)) {
        if let Message::Error {
            request_id,
            error_type,
            ..
        } = message
        {
            too_large.push((request_id, error_type));
        }
    }
    let expected = |id: &str| (id.to_string(), facts::RESPONSE_TOO_LARGE.to_string());
    assert_eq!(too_large, vec![expected("r-1"), expected("r-2")]);
    runtime_round(&api, "after");
}

/// A request once started must arrive whole within its time; a connection
/// idle between requests (the runtime's, while the handler runs) stays.
#[test]
fn a_started_request_has_a_time_limit_and_an_idle_connection_none() {
    let limits = Limits {
        request_time: Duration::from_millis(300),
        ..LIMITS
    };
    let api = started(limits);
    let mut stalled = TcpStream::connect(api.address()).unwrap();
    stalled
        .write_all(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
        .unwrap();
    assert_eq!(until_closed(&mut stalled), "", "closed without an answer");

    let mut idle = TcpStream::connect(api.address()).unwrap();
    let first = exchange(&mut idle, b"GET /a HTTP/1.1\r\n\r\n");
    assert!(first.starts_with("HTTP/1.1 404"), "{first}");
    std::thread::sleep(Duration::from_millis(900));
    let second = exchange(&mut idle, b"GET /b HTTP/1.1\r\n\r\n");
    assert!(second.starts_with("HTTP/1.1 404"), "{second}");
}

/// xorshift64*: a fixed seed gives the same requests on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SHAPES: &[&str] = &[
    "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /2018-06-01/runtime/invocation/r-9/response HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    "POST /2018-06-01/runtime/invocation/r-9/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
];

/// Random bytes, truncated and mangled requests, huge numbers: the server
/// never panics, answers or closes each, and still serves the runtime.
#[test]
fn fuzzed_requests_leave_the_server_serving() {
    let limits = Limits {
        request_time: Duration::from_millis(500),
        ..LIMITS
    };
    let api = started(limits);
    let mut random = Random(0x5eed_1234_abcd_0042);
    for round in 0..200 {
        let shape = SHAPES[random.below(SHAPES.len() as u64) as usize].as_bytes();
        let mut request: Vec<u8> = match round % 4 {
            // Random bytes.
            0 => (0..random.below(4096)).map(|_| random.next() as u8).collect(),
            // Truncated.
            1 => shape[..random.below(shape.len() as u64) as usize].to_vec(),
            // A byte changed.
            2 => {
                let mut bytes = shape.to_vec();
                let at = random.below(bytes.len() as u64) as usize;
                bytes[at] = random.next() as u8;
                bytes
            }
            // A huge number where a size goes.
            _ => {
                let huge = [
                    "18446744073709551615",
                    "1099511627776",
                    "fffffffffffffffff",
                    "7fffffffffffffff",
                ][random.below(4) as usize];
                String::from_utf8_lossy(shape)
                    .replacen("5\r\n", &format!("{huge}\r\n"), 1)
                    .replacen("\r\n3\r\n", &format!("\r\n{huge}\r\n"), 1)
                    .into_bytes()
            }
        };
        if round % 7 == 0 {
            request.truncate(request.len() / 2);
        }
        let mut stream = TcpStream::connect(api.address()).unwrap();
        let _ = stream.write_all(&request);
        let _ = stream.shutdown(Shutdown::Write);

        // Answered or closed, never held: a GET for work waits for work,
        // and sees the client go.
        until_closed(&mut stream);
    }
    while api.receive(Duration::from_millis(50)).is_some() {}
    runtime_round(&api, "after-fuzz");
}

/// Threads of this process now.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 3,000 idle connections: all but [`MAX_CONNECTIONS`] are closed at once;
/// when they go, the runtime is served again.
#[test]
fn connections_over_the_cap_are_closed() {
    let api = started(LIMITS);
    let before = threads();
    let connections: Vec<TcpStream> = (0..3000)
        .map(|_| TcpStream::connect(api.address()).unwrap())
        .collect();
    for stream in &connections {
        stream.set_nonblocking(true).unwrap();
    }
    let closed_by_server = |stream: &TcpStream| match stream.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    };
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        closed = connections
            .iter()
            .filter(|stream| closed_by_server(stream))
            .count();
        if closed >= connections.len() - MAX_CONNECTIONS {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        closed >= connections.len() - MAX_CONNECTIONS,
        "only {closed} of {} were closed",
        connections.len()
    );
    let now = threads();
    // Other tests of this binary may run threads too: the margin is
    // theirs, far below one thread per connection.
    assert!(
        now <= before + MAX_CONNECTIONS + 200,
        "{now} threads, {before} before"
    );
    drop(connections);
    // Their servers see them go and give their places back.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.shared.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime_round(&api, "after-flood");
}

/// A process that is not the runtime gets neither an event nor a hearing.
#[test]
fn another_process_can_neither_take_nor_answer() {
    let api = RuntimeApi::start().unwrap();
    let mut runtime = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
    api.admit(Peers::Tree(runtime.id()));
    api.push(invocation("r-1"));
    let requests = [
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n",
        "POST /2018-06-01/runtime/invocation/r-1/response HTTP/1.1\r\nContent-Length: 6\r\n\r\nforged",
    ];
    for request in requests {
        let mut stream = TcpStream::connect(api.address()).unwrap();
        let _ = stream.write_all(request.as_bytes());
        let answer = until_closed(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(!answer.contains("r-1"), "{answer}");
    }
    let _ = runtime.kill();
    let _ = runtime.wait();
    let mut refused = 0;
    while let Some(message) = api.receive(Duration::from_millis(300)) {
        match message {
            Message::Refused(why) => {
                assert!(why.contains("held by no process of the runtime's tree"), "{why}");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 2);
    assert_eq!(api.shared.queue().pending.len(), 1, "the event is still there");
}
