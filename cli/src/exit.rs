//! Exit codes of `drctl`, and the error type commands return.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use drctl_config::ConfigError;

/// How `drctl` exits; the only place the numbers are defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0: the command did what was asked.
    Ok = 0,
    /// 1: the operation failed at run time (a backend, a site, I/O).
    Failed = 1,
    /// 2: bad input (config, scenario, recording or command-line usage); nothing was done.
    BadInput = 2,
    /// 3 (`startup`): only the secondary site could be reached.
    Secondary = 3,
    /// 4 (`startup`): no site could be reached within `startup.timeout`.
    NoSite = 4,
    /// 128 + 1: stopped by SIGHUP before it could finish (`replay`).
    HangUp = 129,
    /// 128 + 2: stopped by SIGINT before it could finish (`replay`).
    Interrupt = 130,
    /// 128 + 15: stopped by SIGTERM before it could finish (`replay`).
    Terminate = 143,
}

impl Exit {
    /// 128 + the signal's number, as shells report a process a signal ended.
    pub fn signalled(signal: i32) -> Exit {
        match signal {
            libc::SIGHUP => Exit::HangUp,
            libc::SIGINT => Exit::Interrupt,
            _ => Exit::Terminate,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: the error to print and the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong (printed with its causes).
    pub error: anyhow::Error,
}

/// What a command returns.
pub type CliResult = Result<(), CliError>;

impl CliError {
    /// A failure caused by bad input: exit code 2.
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit: Exit::BadInput,
            error: error.into(),
        }
    }

    /// A failure of the operation itself: exit code 1.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit: Exit::Failed,
            error: error.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<ConfigError> for CliError {
    fn from(error: ConfigError) -> Self {
        CliError::bad_input(error)
    }
}

impl From<anyhow::Error> for CliError {
    /// A config error anywhere in the chain is bad input; anything else a failure.
    fn from(error: anyhow::Error) -> Self {
        let bad_input = error.chain().any(|e| e.is::<ConfigError>());
        CliError {
            exit: if bad_input {
                Exit::BadInput
            } else {
                Exit::Failed
            },
            error,
        }
    }
}

/// Writes `text` to stdout; a closed pipe (`| head`) ends the output quietly.
pub fn print_stdout(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::failed(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
        _ => Ok(()),
    }
}
