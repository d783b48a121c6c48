//! Compiles the in-kernel relay (`bpf/relay.bpf.c`) into the eBPF object the
//! runtime loads (`runtime/kernel_relay.rs`). It needs clang and libbpf's
//! headers (Debian's clang and libbpf-dev); without them Bond is built with an
//! empty object, and asking for the kernel relay then says why it cannot run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let source = Path::new("bpf/relay.bpf.c");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("relay.bpf.o");
    let mut clang = Command::new("clang");
    clang.args(["-O2", "-g", "-target", "bpf", "-c"]).arg(source).arg("-o").arg(&out);
    // The kernel headers' <asm/types.h> lives under the host's multiarch directory.
    let multiarch = Path::new("/usr/include/x86_64-linux-gnu");
    if multiarch.is_dir() {
        clang.arg("-I").arg(multiarch);
    }
    let failed = match clang.output() {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    println!(
        "cargo:warning=the in-kernel relay is not built (clang and libbpf-dev): {}",
        first_line(&failed)
    );
    std::fs::write(&out, []).expect("write the empty relay object");
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
