//! Debian packages fetched as files: resolved with apt-cache, downloaded with
//! `apt-get download` into `target/assets/debs/`, unpacked with `dpkg-deb -x`.
//! Nothing is installed on the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail, ensure};

/// Set once `apt-get update` ran in this process.
static UPDATED: AtomicBool = AtomicBool::new(false);

/// A package at an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Package name.
    pub package: String,
    /// Debian version, epoch included (`1:1.35.0-4`).
    pub version: String,
}

impl Pin {
    /// The `name=version` form apt-get takes.
    fn spec(&self) -> String {
        format!("{}={}", self.package, self.version)
    }

    /// The start of the file name `apt-get download` gives this package
    /// (`name_version_`; the epoch's colon is written `%3a`), the architecture
    /// and `.deb` follow.
    fn file_prefix(&self) -> String {
        format!("{}_{}_", self.package, self.version.replace(':', "%3a"))
    }
}

/// Runs `command`, failing with its stderr when it fails; returns stdout.
pub fn capture(command: &mut Command) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` with its output on our stderr (progress visible).
fn run_visible(command: &mut Command) -> Result<()> {
    let status = command
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(status.success(), "{command:?} failed ({status})");
    Ok(())
}

/// `apt-get update`, once per process.
pub fn apt_update() -> Result<()> {
    if UPDATED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    eprintln!("assets: apt-get update");
    run_visible(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("apt-get update failed (it needs root: run `sudo apt-get update` and try again)")
}

/// Whether this process already ran `apt-get update`.
pub fn updated() -> bool {
    UPDATED.load(Ordering::SeqCst)
}

/// The candidate version of `package` (what `apt-get download package` would
/// fetch), or `None` when apt-cache does not know it.
pub fn candidate(package: &str) -> Result<Option<String>> {
    let output = Command::new("apt-cache")
        .args(["show", "--no-all-versions", package])
        .stdin(Stdio::null())
        .output()
        .context("cannot run apt-cache (is this a Debian system?)")?;
    if !output.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(field(&text, "Version").map(str::to_owned))
}

/// The value of `name:` in an apt-cache stanza.
pub fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim())
    })
}

/// The candidate of `package`, running `apt-get update` once when apt-cache
/// does not know it.
pub fn resolve(package: &str) -> Result<Pin> {
    let mut version = candidate(package)?;
    if version.is_none() && !updated() {
        eprintln!("assets: apt-cache does not know {package}");
        apt_update()?;
        version = candidate(package)?;
    }
    let version = version
        .with_context(|| format!("no Debian package {package} (even after apt-get update)"))?;
    Ok(Pin {
        package: package.to_owned(),
        version,
    })
}

/// The `.deb` of `pin` in `debs`, if it was downloaded already.
pub fn downloaded(debs: &Path, pin: &Pin) -> Result<Option<PathBuf>> {
    if !debs.is_dir() {
        return Ok(None);
    }
    let prefix = pin.file_prefix();
    for entry in std::fs::read_dir(debs)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(debs.join(&*name)));
        }
    }
    Ok(None)
}

/// Downloads `pin` into `debs` unless it is there; returns the `.deb`.
pub fn download(debs: &Path, pin: &Pin) -> Result<PathBuf> {
    if let Some(deb) = downloaded(debs, pin)? {
        return Ok(deb);
    }
    std::fs::create_dir_all(debs)?;
    eprintln!("assets: apt-get download {}", pin.spec());
    let started = std::time::Instant::now();
    // As root, apt wants to download as the `_apt` user, which cannot write
    // here: it warns and downloads as root anyway. Say so up front instead.
    let attempt = || {
        run_visible(
            Command::new("apt-get")
                .args(["-o", "APT::Sandbox::User=root", "download", &pin.spec()])
                .current_dir(debs),
        )
    };
    if let Err(error) = attempt() {
        // The package lists may be stale (the archive moved on): update once.
        if updated() {
            return Err(error);
        }
        eprintln!("assets: download failed ({error:#}); updating the package lists");
        apt_update()?;
        attempt().with_context(|| format!("cannot download {}", pin.spec()))?;
    }
    let deb = downloaded(debs, pin)?.with_context(|| {
        format!(
            "apt-get download {} left no {}*.deb",
            pin.spec(),
            pin.file_prefix()
        )
    })?;
    let size = std::fs::metadata(&deb)?.len();
    eprintln!(
        "assets: {} ({:.1} MB) in {:.1?}",
        deb.display(),
        size as f64 / 1e6,
        started.elapsed()
    );
    Ok(deb)
}

/// Unpacks `deb` (the package `pin`) into `dir` unless a stamp says it was
/// done. The stamp is written after `dpkg-deb -x` finished, so an interrupted
/// unpack is redone.
pub fn unpack(deb: &Path, pin: &Pin, dir: &Path) -> Result<()> {
    let stamp = stamp_path(dir, &pin.package);
    if std::fs::read_to_string(&stamp).is_ok_and(|text| text.trim() == pin.version) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    eprintln!("assets: dpkg-deb -x {} {}", deb.display(), dir.display());
    let started = std::time::Instant::now();
    run_visible(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    std::fs::write(&stamp, format!("{}\n", pin.version))?;
    eprintln!(
        "assets: unpacked {} in {:.1?}",
        pin.package,
        started.elapsed()
    );
    Ok(())
}

/// Whether `pin` was completely unpacked into `dir`.
pub fn is_unpacked(pin: &Pin, dir: &Path) -> bool {
    std::fs::read_to_string(stamp_path(dir, &pin.package))
        .is_ok_and(|text| text.trim() == pin.version)
}

/// The stamp file recording that `package` was unpacked into `dir`.
fn stamp_path(dir: &Path, package: &str) -> PathBuf {
    dir.join(format!(".unpacked-{package}"))
}

/// Downloads and unpacks `pin` into `dir`.
pub fn fetch(debs: &Path, pin: &Pin, dir: &Path) -> Result<()> {
    if is_unpacked(pin, dir) {
        return Ok(());
    }
    let deb = download(debs, pin)?;
    unpack(&deb, pin, dir)
}

/// A lock file: `key value...` lines, `#` comments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The lines, in order.
    pub entries: Vec<(String, Vec<String>)>,
}

impl Lock {
    /// Reads `path`; `None` when it does not exist or does not parse.
    pub fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lock = Self::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace().map(str::to_owned);
            let key = words.next()?;
            lock.entries.push((key, words.collect()));
        }
        Some(lock)
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// A package pin stored as `key package version`.
    pub fn pin(&self, key: &str) -> Option<Pin> {
        match self.get(key)? {
            [package, version] => Some(Pin {
                package: package.clone(),
                version: version.clone(),
            }),
            _ => None,
        }
    }

    /// Writes the lock with a header comment.
    pub fn write(&self, path: &Path, comment: &str) -> Result<()> {
        let mut text = String::new();
        for line in comment.lines() {
            text.push_str(&format!("# {line}\n"));
        }
        for (key, values) in &self.entries {
            text.push_str(&format!("{key} {}\n", values.join(" ")));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_encode_the_epoch() {
        let pin = Pin {
            package: "busybox-static".into(),
            version: "1:1.35.0-4+deb12u1+b1".into(),
        };
        assert_eq!(pin.file_prefix(), "busybox-static_1%3a1.35.0-4+deb12u1+b1_");
        assert_eq!(pin.spec(), "busybox-static=1:1.35.0-4+deb12u1+b1");
    }

    #[test]
    fn stanza_fields() {
        let stanza = "Package: linux-image-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\n";
        assert_eq!(field(stanza, "Version"), Some("6.1.192-2"));
        assert_eq!(
            field(stanza, "Depends"),
            Some("linux-image-6.1.0-56-amd64 (= 6.1.192-2)")
        );
        assert_eq!(field(stanza, "Size"), None);
    }

    #[test]
    fn lock_round_trip() {
        let path = std::env::temp_dir().join(format!("oxen-lock-test-{}", std::process::id()));
        let lock = Lock {
            entries: vec![
                ("abi".into(), vec!["6.1.0-56".into()]),
                (
                    "image".into(),
                    vec![
                        "linux-image-6.1.0-56-amd64-unsigned".into(),
                        "6.1.192-2".into(),
                    ],
                ),
            ],
        };
        lock.write(&path, "test\nlock").unwrap();
        let back = Lock::read(&path).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.get("abi"), Some(&["6.1.0-56".to_owned()][..]));
        assert_eq!(back.pin("image").unwrap().version, "6.1.192-2");
        assert!(back.pin("abi").is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
