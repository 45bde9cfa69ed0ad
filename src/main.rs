//! The `trent` binary: a thin entry into `trent_server::cli` (it lives in the root package so
//! that the black-box tests in `tests/` get its path from Cargo).

/// The process's allocator: mimalloc, not glibc's malloc. A call allocates about 130 times; under
/// callgrind glibc spent about 700 instructions per allocation and free (arena locking and
/// `malloc_consolidate`, which every allocation of a kilobyte or more runs), 17% of an Encrypt's
/// instructions outside SHA-256; mimalloc cuts the call's instructions by about 80,000. Built
/// without transparent huge pages (`no_thp`): with them its arenas started 25 MiB larger.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trent_server::cli::main()
}
