//! The built lbtop, run with a HOME and XDG directories of its own, so a test never reads or
//! writes the developer's config, logs or audit log.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn lbtop(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp home");
    Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .output()
        .expect("run lbtop")
}
