//! A local stand-in for an OpenAI-compatible chat endpoint, for the HTTP judge's tests.
//!
//! It listens on 127.0.0.1 (an ephemeral port), checks every request (POST
//! `/v1/chat/completions`, the bearer key, the model, temperature 0, one user message
//! holding an appendix-H prompt with both responses) and answers from markers in the
//! responses it is shown:
//! - `GOOD` in exactly one response: it picks that one ("Response N is more helpful.");
//! - `SAME` in both: "Both responses are equally helpful." (a tie);
//! - `GARBLE` in either: "I cannot decide." (unparsable);
//! - `[429]` / `[500]` anywhere: the first request with that message gets that status
//!   (429 with `Retry-After: 0`), later ones are answered;
//! - `[503]`: always 503.
//!
//! A request failing a check gets a 400 naming the problem, which fails the judge.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    requests: AtomicUsize,
    messages: Mutex<Vec<String>>,
    failed_once: Mutex<HashSet<String>>,
    stop: AtomicBool,
}

pub struct FakeJudgeServer {
    /// The base URL to give the judge: `http://127.0.0.1:<port>/v1`.
    pub url: String,
    addr: std::net::SocketAddr,
    state: Arc<State>,
}

impl FakeJudgeServer {
    /// Serves until dropped; requests must name `model` and carry `key` if given.
    pub fn start(model: &str, key: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let (model, key, st) = (model.to_string(), key.map(str::to_string), state.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    // A broken connection is the client's business (it retries).
                    let _ = serve(s, &st, &model, key.as_deref());
                }
            }
        });
        Self {
            url: format!("http://{addr}/v1"),
            addr,
            state,
        }
    }

    /// Requests received so far (every attempt, retries included).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The judge messages received, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        self.state.messages.lock().unwrap().clone()
    }
}

impl Drop for FakeJudgeServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn serve(stream: TcpStream, st: &State, model: &str, key: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut auth) = (0usize, None::<String>);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    if request_line.is_empty() {
        return Ok(()); // the wake-up connection of Drop
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    st.requests.fetch_add(1, Ordering::SeqCst);
    let (status, extra, answer) = respond(st, &request_line, auth.as_deref(), &body, model, key);
    let mut stream = stream;
    let text = answer.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn respond(
    st: &State,
    request_line: &str,
    auth: Option<&str>,
    body: &[u8],
    model: &str,
    key: Option<&str>,
) -> (u16, &'static str, Value) {
    let bad = |problem: String| (400, "", json!({ "error": { "message": problem } }));
    if !request_line.starts_with("POST /v1/chat/completions ") {
        return bad(format!("unexpected request line {request_line:?}"));
    }
    if let Some(k) = key {
        if auth != Some(&format!("Bearer {k}")) {
            return (401, "", json!({ "error": { "message": "bad key" } }));
        }
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad("body is not JSON".into());
    };
    if req["model"] != model {
        return bad(format!("model {} instead of {model:?}", req["model"]));
    }
    if req["temperature"].as_f64() != Some(0.0) {
        return bad(format!("temperature {} instead of 0", req["temperature"]));
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    if messages.len() != 1 || messages[0]["role"] != "user" {
        return bad(format!("expected one user message, got {messages:?}"));
    }
    let message = messages[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (noun, tail) = if message
        .starts_with("Here is a conversation between <|user|>and <|assistant|>.")
    {
        ("Response", "Between these two responses, which response is more helpful, harmless, and concise? Pick one.")
    } else if message.starts_with(
        "Here is a forum post presented by <|user|>for summarization by <|assistant|>.",
    ) {
        (
            "Summary",
            "A good summary is both precise and concise. Pick one.",
        )
    } else {
        return bad(format!("not an appendix-H prompt: {message:?}"));
    };
    if !message.ends_with(tail) {
        return bad(format!("the prompt does not end with {tail:?}"));
    }
    let upper = noun.to_uppercase();
    let shown = |n: u8| {
        let start = format!("{noun} {n}: ");
        let end = format!("\n\nEND OF {upper} {n}");
        let from = message.find(&start)? + start.len();
        let to = from + message[from..].find(&end)?;
        Some(message[from..to].to_string())
    };
    let (Some(one), Some(two)) = (shown(1), shown(2)) else {
        return bad("both responses must be shown".into());
    };
    st.messages.lock().unwrap().push(message.clone());
    if message.contains("[503]") {
        return (503, "", json!({ "error": { "message": "overloaded" } }));
    }
    for (marker, status, extra) in [("[429]", 429, "Retry-After: 0\r\n"), ("[500]", 500, "")] {
        if message.contains(marker)
            && st
                .failed_once
                .lock()
                .unwrap()
                .insert(format!("{marker}{message}"))
        {
            return (
                status,
                extra,
                json!({ "error": { "message": "try again" } }),
            );
        }
    }
    let reply = if one.contains("GARBLE") || two.contains("GARBLE") {
        "I cannot decide.".to_string()
    } else if one.contains("SAME") && two.contains("SAME") {
        "Both responses are equally helpful.".to_string()
    } else {
        match (one.contains("GOOD"), two.contains("GOOD")) {
            (true, false) => format!("{noun} 1 is more helpful."),
            (false, true) => format!("**{noun} 2**"),
            _ => "Hmm.".to_string(),
        }
    };
    let answer = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": reply }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": message.len() / 4, "completion_tokens": 5 },
    });
    (200, "", answer)
}
