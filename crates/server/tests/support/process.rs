//! Running the real `ephemera` binary as an operator would.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ephemera");

/// `ephemera <args>` in an empty folder (no stray .env), with `vars` set.
pub fn ephemera(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("EPHEMERA_LISTEN")
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stdin(Stdio::null());
    cmd
}

pub fn run(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    ephemera(dir, args, vars)
        .output()
        .expect("running ephemera")
}

/// Kills the child when the test ends, pass or fail.
pub struct Running(pub Option<Child>);

impl Running {
    /// Kills the process and returns what it wrote.
    pub fn stop(mut self) -> Output {
        let mut child = self.0.take().expect("still running");
        let _ = child.kill();
        child.wait_with_output().expect("collecting output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ephemera serve` with `vars` (which listen on `port`), its output
/// discarded; returns once it is ready.
pub fn serve_ready(dir: &std::path::Path, port: u16, vars: &[(&str, &str)]) -> Running {
    let child = ephemera(dir, &["serve"], vars)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    assert!(wait_ready(port), "ephemera on {port} became ready");
    running
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls readiness; a deadline only keeps a broken build from hanging.
pub fn wait_ready(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_get(port, "/health/ready").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
