//! The `creditlink` binary: everything real lives in the library (`creditlink::cli`).

fn main() -> std::process::ExitCode {
    creditlink::cli::main()
}
