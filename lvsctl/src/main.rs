//! lvsctl: the administration CLI of the LVS director cluster.

fn main() -> std::process::ExitCode {
    lvsctl::main()
}
