//! The `creditlink` binary: parse the command line, start a runtime, hand over to the library.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the daemon and the simulator allocate many small short-lived JSON values
/// per request, and glibc's malloc/free took ~40 % of the simulator's CPU in a profile (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match creditlink::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("creditlink: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(creditlink::cli::run(cli))
}
