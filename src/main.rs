//! The `creditlink` binary: parse the command line, start a runtime, hand over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    bound_malloc_arenas();
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

/// glibc gives threads that allocate under contention arenas of their own (up to eight per core) and
/// seldom hands their free memory back: with the blocking pool's threads writing the outbox, 100,000
/// queued requests left several hundred MB resident that a restart showed was not live data. Two
/// arenas keep the heap compact (BENCHMARKS.md has the before/after). `MALLOC_ARENA_MAX` in the
/// environment still wins. Runs before the runtime starts any thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}
