// mimalloc instead of glibc malloc: a GraphQL response is built from many small allocations,
// and glibc's malloc/free took a fifth of the server's CPU in the read benchmark
// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mycrm::cli::main()
}
