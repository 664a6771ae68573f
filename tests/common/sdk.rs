//! The C SDK for tests: built once per test binary by sdk/dist.sh (as
//! `make sdk` does, with the quick dev profile), C programs compiled
//! against it with cc and its pkg-config file, and programs driven line by
//! line over stdin and stdout.

use super::{lines_of, wait_exit, PATIENCE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The repository.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command` to completion; panics with its output unless it succeeds.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether `program --version` runs. Under CI it must (.ci/run installs
/// `package`); elsewhere a test may skip without it.
pub fn installed(program: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("{program} is missing (apt-get install {package})");
    }
    if !found {
        eprintln!("{program} not found: skipped");
    }
    found
}

/// The SDK directory (library, header, pkg-config file), built on first use.
pub fn sdk_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = repo().join("target/sdk-test");
        run_ok(
            Command::new("bash")
                .arg(repo().join("sdk/dist.sh"))
                .arg(&dir)
                .arg("dev")
                .env("CARGO", env!("CARGO")),
            "sdk/dist.sh",
        );
        dir
    })
}

/// `pkg-config ARGS floatd_client` against the SDK directory, split.
pub fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = run_ok(
        Command::new("pkg-config")
            .args(args)
            .arg("floatd_client")
            .env("PKG_CONFIG_PATH", sdk_dir()),
        "pkg-config",
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Compiles a C (`cc`, strict C99) or C++ (`c++`) program into `out`
/// against the shared library, found at run time through an rpath.
pub fn compile(compiler: &str, flags: &[&str], sources: &[PathBuf], out: &Path) {
    run_ok(
        Command::new(compiler)
            .args(["-g", "-Wall", "-Wextra", "-Werror"])
            .args(flags)
            .args(pkg_config(&["--cflags"]))
            .args(sources)
            .arg("-o")
            .arg(out)
            .args(pkg_config(&["--libs"]))
            .arg(format!("-Wl,-rpath,{}", sdk_dir().display())),
        compiler,
    );
}

/// Valgrind, if installed (under CI it must be).
pub fn valgrind() -> Option<&'static str> {
    installed("valgrind", "valgrind").then_some("valgrind")
}

/// Valgrind's arguments: any invalid access or definite leak fails the run
/// with exit code 99.
pub const VALGRIND_ARGS: &[&str] = &[
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite,indirect",
    "--show-leak-kinds=definite,indirect",
    "--track-fds=no",
    "--quiet",
];

/// A program with stdin and stdout piped, killed on drop.
pub struct Program {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every stdout line so far, for failure messages.
    pub seen: Vec<String>,
}

impl Program {
    /// Starts `command` (stderr goes to the test's stderr).
    pub fn start(mut command: Command) -> Program {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let lines = lines_of(child.stdout.take().unwrap());
        Program {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `text`; returns it.
    pub fn wait_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE * 2;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    assert!(!line.starts_with("FAIL"), "{line}\n{:#?}", self.seen);
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; saw {:#?}", self.seen),
            }
        }
    }

    /// Sends one line on stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the program");
        stdin.flush().unwrap();
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal}");
    }

    /// Waits for the exit and the rest of stdout; returns the exit code.
    pub fn finish(&mut self, within: Duration) -> Option<i32> {
        self.stdin = None;
        let code = wait_exit(&mut self.child, within);
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        code
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
