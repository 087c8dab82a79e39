//! Man pages and shell completions generated from a binary's clap definition by the binary
//! itself: `BIN __generate-docs OUTDIR` writes `OUTDIR/man/BIN.1` (and `BIN-SUB.1`,
//! `BIN-SUB-SUBSUB.1` for every visible subcommand) and `OUTDIR/completions/{BIN.bash,_BIN,BIN.fish}`,
//! so packaging needs no separate build step and the pages always match the binary.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// `argv[1]` that writes the docs instead of running the program (not shown in `--help`).
pub const GENERATE_DOCS_ARG: &str = "__generate-docs";

/// The manual the pages belong to (the centre of a man page's footer).
const MANUAL: &str = "LVS director cluster";

/// Handles `BIN __generate-docs OUTDIR` before the normal argument parsing: writes the docs of
/// `command()`, prints the files written and returns the exit code. `None` for any other
/// command line.
pub fn from_args(command: impl FnOnce() -> clap::Command) -> Option<i32> {
    from_argv(std::env::args_os().skip(1).collect(), command)
}

fn from_argv(args: Vec<OsString>, command: impl FnOnce() -> clap::Command) -> Option<i32> {
    let mut args = args.into_iter();
    if args.next()? != GENERATE_DOCS_ARG {
        return None;
    }
    let cmd = command();
    let name = cmd.get_name().to_string();
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: {name} {GENERATE_DOCS_ARG} OUTDIR");
        return Some(2);
    };
    match generate(cmd, Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            Some(0)
        }
        Err(e) => {
            eprintln!(
                "{name}: error: writing docs to {}: {e}",
                Path::new(&out).display()
            );
            Some(1)
        }
    }
}

/// Writes the man pages and completion scripts of `cmd` under `out`; returns the files written.
pub fn generate(cmd: clap::Command, out: &Path) -> io::Result<Vec<PathBuf>> {
    let name = cmd.get_name().to_string();
    let man_dir = out.join("man");
    let completions_dir = out.join("completions");
    fs::create_dir_all(&man_dir)?;
    fs::create_dir_all(&completions_dir)?;
    let mut files = Vec::new();

    // Built once at the top, so every subcommand knows its display name (`lvsctl-service-add`).
    let mut top = cmd.clone().disable_help_subcommand(true);
    top.build();
    write_man_pages(top, &man_dir, &mut files)?;

    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut script);
        let path = completions_dir.join(file);
        fs::write(&path, script)?;
        files.push(path);
    }
    Ok(files)
}

fn write_man_pages(cmd: clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub.clone(), dir, files)?;
    }
    let man = clap_mangen::Man::new(cmd).manual(MANUAL);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    fs::write(&path, page)?;
    files.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn demo() -> Command {
        Command::new("demo")
            .version("1.0")
            .about("A demo")
            .arg(Arg::new("config").long("config").help("Config file"))
            .subcommand(
                Command::new("service")
                    .about("Services")
                    .subcommand(Command::new("add").about("Add one")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn writes_pages_per_subcommand_and_completions() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(demo(), dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for want in [
            "man/demo.1",
            "man/demo-service.1",
            "man/demo-service-add.1",
            "completions/demo.bash",
            "completions/_demo",
            "completions/demo.fish",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        assert!(!names
            .iter()
            .any(|n| n.contains("secret") || n.contains("help")));
        let page = fs::read_to_string(dir.path().join("man/demo.1")).unwrap();
        assert!(page.contains("\\-\\-config"), "{page}");
        assert!(page.contains(MANUAL));
        let bash = fs::read_to_string(dir.path().join("completions/demo.bash")).unwrap();
        assert!(bash.contains("--config"));
    }

    #[test]
    fn only_the_hidden_argument_triggers() {
        assert_eq!(from_argv(args(&[]), demo), None);
        assert_eq!(from_argv(args(&["--config", "x"]), demo), None);
        assert_eq!(from_argv(args(&[GENERATE_DOCS_ARG]), demo), Some(2));
        assert_eq!(
            from_argv(args(&[GENERATE_DOCS_ARG, "a", "b"]), demo),
            Some(2)
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("docs");
        let code = from_argv(
            vec![GENERATE_DOCS_ARG.into(), out.clone().into_os_string()],
            demo,
        );
        assert_eq!(code, Some(0));
        assert!(out.join("man/demo.1").is_file());
    }
}
