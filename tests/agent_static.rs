//! The self-contained binary for x86_64 routers, built as the README says (the gnu target with
//! glibc linked statically): it has no program interpreter (no dynamic loader, no shared library),
//! and `lbtop agent` runs in an empty chroot — a directory that holds nothing but the binary —
//! and greets.

use std::path::Path;
use std::process::{Command, Stdio};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Whether the ELF file has a PT_INTERP program header (a dynamic loader to run it).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF file");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]) == 3
    })
}

#[test]
fn the_static_router_binary_runs_the_agent_in_an_empty_chroot() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = repo.join("target/static");
    // Exactly the README's command.
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(repo)
        .status()
        .expect("run cargo");
    assert!(status.success(), "the static build failed");
    let bin = target_dir.join(TARGET).join("release/lbtop");
    let elf = std::fs::read(&bin).expect("the binary");
    assert!(
        !has_interpreter(&elf),
        "{} needs a dynamic loader",
        bin.display()
    );
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_lbtop")).expect("the usual binary");
    assert!(has_interpreter(&dynamic), "the check tells the two apart");

    let root = tempfile::tempdir().expect("chroot dir");
    std::fs::copy(&bin, root.path().join("lbtop")).expect("copy");
    let out = Command::new("/usr/sbin/chroot")
        .arg(root.path())
        .args(["/lbtop", "agent"])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("chroot (the tests run as root)");
    assert!(
        out.status.success(),
        "lbtop agent in an empty chroot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.starts_with(lbtop::source::agent::MAGIC),
        "it greets: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
