//! Keymap (OWNED BY keymap helper).
