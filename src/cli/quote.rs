//! Command lines people can copy: every argument quoted the way a POSIX shell reads it
//! back unchanged. Used wherever the CLI suggests a command (`--start-after '…'`).
//! `scripts/lib.sh` does the same for the scripts' printed command lines, and the tests
//! check both against a real shell.

/// Characters that need no quoting in any POSIX shell word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-./:,=@%+".contains(c)
}

/// `arg` as one shell word: unchanged if it is plain, else in single quotes (a single
/// quote inside becomes `'\''`).
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(is_plain) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The arguments joined into one command line a shell splits back into the same words.
pub fn shell_line<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> String {
    args.into_iter().map(|a| shell_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(shell_quote("--table-name"), "--table-name");
        assert_eq!(shell_quote("127.0.0.1:8100"), "127.0.0.1:8100");
        assert_eq!(shell_quote("node-1_a=b,c@d%e+f/g"), "node-1_a=b,c@d%e+f/g");
    }

    #[test]
    fn spaces_quotes_and_json_are_single_quoted() {
        assert_eq!(shell_quote("No One You Know"), "'No One You Know'");
        assert_eq!(shell_quote(r#"{"Key":"demo"}"#), r#"'{"Key":"demo"}'"#);
        assert_eq!(shell_quote("Don't Stop"), r"'Don'\''t Stop'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME*"), "'$HOME*'");
    }

    #[test]
    fn a_shell_splits_the_line_back_into_the_same_words() {
        let args = ["get-item", "--partition-key", "No One You Know", "it's", "", "a\"b", "$x"];
        let line = shell_line(args);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {line}"))
            .output()
            .expect("sh runs");
        let words: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(words, args);
    }
}
