//! Settings from command-line flags that mirror environment variables, with
//! errors that fit on one line and name both the flag and the variable.
use clap::error::{ContextKind, ErrorKind};
use clap::{CommandFactory, Parser};

/// Parses the process's arguments and environment into `T`. On `--help` and
/// `--version`, prints them and exits 0; on a bad setting, prints one line
/// naming the flag, its environment variable and what is accepted, and exits 2.
pub fn parse_or_exit<T: Parser>() -> T {
    match T::try_parse() {
        Ok(settings) => settings,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            eprintln!("{}", one_line_error::<T>(&err));
            std::process::exit(2)
        }
    }
}

/// The exit status of a service whose `run` returned `result`: success, or
/// failure after one line `error: …` on standard error.
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The first line of clap's message, plus the environment variable behind the
/// flag at fault, since most deployments set variables, not flags.
pub fn one_line_error<T: CommandFactory>(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first_line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid settings")
        .trim_end();
    let env = err.get(ContextKind::InvalidArg).and_then(|arg| {
        let arg = arg.to_string();
        let mut command = T::command();
        command.build();
        let env = command
            .get_arguments()
            .find(|candidate| candidate.to_string() == arg)
            .and_then(|candidate| candidate.get_env())
            .map(|env| env.to_string_lossy().into_owned());
        env
    });
    match env {
        Some(env) => format!("{first_line} (set by the flag or by the environment variable {env})"),
        None => first_line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Settings {
        #[arg(long, env = "TEST_CLI_PORT", default_value_t = 8080)]
        port: u16,
    }

    #[test]
    fn a_bad_value_gives_one_line_naming_flag_and_variable() {
        let err = Settings::try_parse_from(["app", "--port", "70000"]).expect_err("out of range");
        let line = one_line_error::<Settings>(&err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--port"), "{line}");
        assert!(line.contains("TEST_CLI_PORT"), "{line}");
        assert!(line.contains("70000"), "{line}");
    }
}
