# Shared by the scripts: print command lines people can copy.
#
# shell_line ARG...  prints the arguments as one command line that a POSIX shell splits
# back into the same words: plain words as they are, anything else in single quotes
# (a single quote inside becomes '\''). The same rule as `src/cli/quote.rs`; the tests
# check both against a real shell.
shell_line() {
  local out=() a q="'" esc="'\\''"
  for a in "$@"; do
    if [[ -n $a && $a =~ ^[A-Za-z0-9_./:,=@%+-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//$q/$esc}'")
    fi
  done
  printf '%s' "${out[*]}"
}
