fn main() -> std::process::ExitCode {
    mycrm::cli::main()
}
