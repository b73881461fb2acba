// mimalloc instead of glibc malloc: a GraphQL response is built from many small allocations,
// and glibc's malloc/free took a fifth of the server's CPU in the read benchmark
// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the binding names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Memory freed in whole pages goes back to the OS at once instead of after a delay: with
    // the delay, a 1,000,000-row import sat 40 MB higher (RSS 150-190 MB against 120-130
    // MB) at the same speed (BENCHMARKS.md).
    // SAFETY: sets a process-wide option of the allocator before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    mycrm::cli::main()
}
