//! Exit codes: 0 success, 1 finished with problems, 2 fatal or usage error, 130 interrupted.

use std::process::ExitCode;

use cairn_repo::Error as RepoError;

use crate::printer::Printer;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// Everything worked.
    Success,
    /// Finished, but with problems (skipped files, damage found).
    Problems,
    /// A fatal or usage error.
    Error,
    /// Interrupted by the user.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(match s {
            ExitStatus::Success => 0,
            ExitStatus::Problems => 1,
            ExitStatus::Error => 2,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// Prints an error and chooses the exit status. A broken pipe (stdout closed by `head`) is
/// success.
pub(crate) fn report(printer: &Printer, err: &anyhow::Error) -> ExitStatus {
    if stdout_closed(err) {
        return ExitStatus::Success;
    }
    for cause in err.chain() {
        if let Some(RepoError::Interrupted) = cause.downcast_ref::<RepoError>() {
            printer.error("interrupted; the repository is consistent (nothing of this run is visible as a snapshot)");
            return ExitStatus::Interrupted;
        }
    }
    printer.error(&message(err));
    ExitStatus::Error
}

/// True when the command stopped because its own output was closed (`cairn … | head`): an
/// I/O error of the printer itself, not one deeper in the chain. A storage request whose
/// connection broke also carries a broken pipe among its causes, and that is a failure.
fn stdout_closed(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Whether the error is the engine's "interrupted by the user".
pub(crate) fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| matches!(c.downcast_ref::<RepoError>(), Some(RepoError::Interrupted)))
}

/// The error and its causes, as [`cairn_repo::error_message`] words them.
pub(crate) fn message(err: &anyhow::Error) -> String {
    cairn_repo::error_message(err.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Upload(std::io::Error);

    impl std::fmt::Display for Upload {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("write data/ab: connection lost")
        }
    }

    impl std::error::Error for Upload {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn only_the_printers_own_broken_pipe_is_a_closed_stdout() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(stdout_closed(&anyhow::Error::new(pipe())));
        // A failed upload whose connection broke: a failure, however deep the pipe is.
        let upload = anyhow::Error::new(Upload(pipe())).context("backup");
        assert!(!stdout_closed(&upload));
        assert!(!stdout_closed(&anyhow::Error::new(Upload(pipe()))));
    }
}
