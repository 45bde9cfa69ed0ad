//! The `trent` binary: a thin entry into `trent_service::cli` (it lives in the root package so
//! that the black-box tests in `tests/` get its path from Cargo).

fn main() -> std::process::ExitCode {
    trent_service::cli::main()
}
