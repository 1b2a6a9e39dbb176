use std::ffi::c_char;
use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: 5-10% less CPU per check (bench/README.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` runs. One arena for every thread: glibc's arena
/// per thread held 7-10 MiB more with a second worker, mostly free chunks between live
/// ones, and jemalloc's per-thread caches keep the shared arena's lock out of the way.
/// Freed pages go back to the system after 250 ms rather than 10 s.
// SAFETY: the pointer is to a C string literal, which lives as long as the program.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_OPTIONS: Option<&c_char> =
    Some(unsafe { &*c"narenas:1,dirty_decay_ms:250,muzzy_decay_ms:0".as_ptr() });

fn main() -> ExitCode {
    ExitCode::from(upcheck::main_with_args(std::env::args_os().collect()))
}
