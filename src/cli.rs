//! Command-line entry point (owned by the config/CLI work).

/// Parses the command line and runs the chosen command.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(64)
}
