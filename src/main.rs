//! The `trent` binary: a thin entry into `trent_server::cli` (it lives in the root package so
//! that the black-box tests in `tests/` get its path from Cargo).

fn main() -> std::process::ExitCode {
    trent_server::cli::main()
}
