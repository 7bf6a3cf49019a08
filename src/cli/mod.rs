//! One file per subcommand that is not the TUI.
