fn main() -> std::process::ExitCode {
    ephemera_server::cli::main()
}
