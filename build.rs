//! Builds the XDP program `bpf/relay.bpf.c` into a libbpf-rs skeleton in `OUT_DIR` and sets
//! `cfg(rtprelay_xdp)`, when the `xdp` feature is on and `clang` runs. Otherwise the crate builds
//! a stub XDP module that reports "not built", so a host without clang still gets a relay.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rtprelay_xdp)");
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=bpf/relay.bpf.c");
    println!("cargo:rerun-if-changed=bpf/relay.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    xdp::build();
}

/// The clang to use: `$CLANG`, else `clang` from `PATH`.
fn clang() -> String {
    std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned())
}

/// Does `clang --version` run?
fn clang_runs(clang: &str) -> bool {
    Command::new(clang)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The Debian/Ubuntu multiarch include directory that holds `<asm/types.h>` for the target, e.g.
/// `/usr/include/aarch64-linux-gnu`: asked of gcc when the target is the host, else derived
/// from the target triple.
fn multiarch_include() -> Option<String> {
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let from_gcc = (target == host)
        .then(|| Command::new("gcc").arg("-print-multiarch").output().ok())
        .flatten()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    let multiarch = from_gcc.or_else(|| {
        // x86_64-unknown-linux-gnu -> x86_64-linux-gnu; armv7-unknown-linux-gnueabihf -> arm-linux-gnueabihf.
        let mut parts = target.split('-');
        let arch = parts.next()?;
        let rest: Vec<&str> = parts.filter(|p| *p != "unknown").collect();
        let arch = match arch {
            a if a.starts_with("armv7") => "arm",
            "i586" | "i686" => "i386",
            a => a,
        };
        Some(format!("{arch}-{}", rest.join("-")))
    })?;
    let dir = format!("/usr/include/{multiarch}");
    std::path::Path::new(&dir).is_dir().then_some(dir)
}

#[cfg(feature = "xdp")]
mod xdp {
    use std::path::PathBuf;

    pub fn build() {
        let clang = super::clang();
        if !super::clang_runs(&clang) {
            println!(
                "cargo:warning=`{clang} --version` failed: building without the XDP plane \
                 (install clang, libelf-dev, zlib1g-dev to get it)"
            );
            return;
        }
        let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
            println!("cargo:warning=OUT_DIR not set: building without the XDP plane");
            return;
        };
        let mut args = vec!["-O2".to_owned(), "-g".to_owned(), "-Wall".to_owned()];
        if let Some(dir) = super::multiarch_include() {
            args.push(format!("-I{dir}"));
        }
        let result = libbpf_cargo::SkeletonBuilder::new()
            .source("bpf/relay.bpf.c")
            .clang(&clang)
            .clang_args(&args)
            .build_and_generate(out.join("relay.skel.rs"));
        match result {
            Ok(()) => println!("cargo:rustc-cfg=rtprelay_xdp"),
            // A clang that runs but cannot compile the program is a bug in bpf/, not a missing
            // tool: fail loudly rather than silently dropping the plane.
            Err(e) => panic!("building bpf/relay.bpf.c failed: {e:#}"),
        }
    }
}

#[cfg(not(feature = "xdp"))]
mod xdp {
    pub fn build() {
        // The helpers are only needed with the feature; keep them referenced.
        let _ = (super::clang, super::clang_runs, super::multiarch_include);
    }
}
