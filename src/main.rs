//! The `creditlink` binary: parse the command line, start a runtime, hand over to the library.

use std::process::ExitCode;

/// jemalloc instead of glibc's malloc: in profiles of intake, the simulator and the feeds worker glibc's
/// `malloc`/`free` took 30-40 % of the CPU (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (`_RJEM_MALLOC_CONF` in the environment overrides them): a
/// background thread returns freed pages to the kernel after about a second instead of whenever a thread
/// next allocates, so RSS follows the working set (a drained backlog, a finished upload).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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
