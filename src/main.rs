//! The `creditlink` binary: parse the command line, start a runtime, hand over to the library.

use std::process::ExitCode;

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
