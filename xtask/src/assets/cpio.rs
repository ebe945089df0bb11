//! A writer (and, for the tests, a reader) of "newc" cpio archives, the format
//! Linux unpacks as an initramfs (`Documentation/driver-api/early-userspace/
//! buffer-format.rst`).
//!
//! Every member is a 110-byte ASCII header — the magic `070701` and thirteen
//! 8-digit hexadecimal fields — then the path name with its NUL, padded to a
//! multiple of 4 bytes, then the contents, padded to a multiple of 4 bytes. The
//! archive ends with a member named `TRAILER!!!`.
//!
//! The kernel does not create missing parent directories, so [`Archive`] adds
//! them itself and writes members in path order (a directory always precedes
//! what it holds). Timestamps are 0 and inode numbers count up from 1, so the
//! same inputs always give the same bytes.

use std::collections::BTreeMap;

use anyhow::{Result, bail, ensure};

/// The newc magic (no header checksum).
pub const MAGIC: &[u8; 6] = b"070701";
/// Length of a newc header: the magic and thirteen 8-digit hex fields.
pub const HEADER_LEN: usize = 110;
/// The name of the member that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFMT: u32 = 0o170_000;

/// What one member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
    /// A character device node.
    CharDev {
        /// Device major number.
        major: u32,
        /// Device minor number.
        minor: u32,
    },
}

/// One member: what it is and its permission bits (`0o755`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The node.
    pub node: Node,
    /// Permission bits (no file type bits).
    pub perm: u32,
}

impl Entry {
    /// The full `st_mode`: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        let kind = match self.node {
            Node::Dir => S_IFDIR,
            Node::File(_) => S_IFREG,
            Node::Symlink(_) => S_IFLNK,
            Node::CharDev { .. } => S_IFCHR,
        };
        kind | (self.perm & 0o7777)
    }
}

/// An archive being assembled: paths (without a leading `/`) to members.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
        self.insert(
            path,
            Entry {
                node: Node::Dir,
                perm,
            },
        )
    }

    /// Adds a regular file (and its parent directories).
    pub fn file(&mut self, path: &str, perm: u32, contents: Vec<u8>) -> Result<()> {
        self.insert(
            path,
            Entry {
                node: Node::File(contents),
                perm,
            },
        )
    }

    /// Adds a symbolic link `path` -> `target` (and its parent directories).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        ensure!(!target.is_empty(), "symlink {path} has an empty target");
        self.insert(
            path,
            Entry {
                node: Node::Symlink(target.to_owned()),
                perm: 0o777,
            },
        )
    }

    /// Adds a character device node (and its parent directories).
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.insert(
            path,
            Entry {
                node: Node::CharDev { major, minor },
                perm,
            },
        )
    }

    /// The member at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(normalize(path).ok()?.as_str())
    }

    /// Number of members (directories included, trailer excluded).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive has no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `entry` at `path`, creating missing parent directories (0755).
    /// Replacing a member by one of the same kind is allowed (the later one
    /// wins: extra files can override defaults); anything else is an error.
    fn insert(&mut self, path: &str, entry: Entry) -> Result<()> {
        let path = normalize(path)?;
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for component in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.entries.get(&parent) {
                None => {
                    self.entries.insert(
                        parent.clone(),
                        Entry {
                            node: Node::Dir,
                            perm: 0o755,
                        },
                    );
                }
                Some(Entry {
                    node: Node::Dir, ..
                }) => {}
                Some(_) => bail!(
                    "{path}: parent {parent} is already in the archive and is not a directory"
                ),
            }
        }
        if let Some(old) = self.entries.get(&path) {
            let same_kind = old.mode() & S_IFMT == entry.mode() & S_IFMT;
            ensure!(
                same_kind,
                "{path} is already in the archive as another kind of file"
            );
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// The archive in newc format, trailer included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, (path, entry)) in self.entries.iter().enumerate() {
            let ino = index as u32 + 1;
            let nlink = if matches!(entry.node, Node::Dir) {
                2
            } else {
                1
            };
            let (data, rdev): (&[u8], (u32, u32)) = match &entry.node {
                Node::Dir => (&[], (0, 0)),
                Node::File(contents) => (contents, (0, 0)),
                Node::Symlink(target) => (target.as_bytes(), (0, 0)),
                Node::CharDev { major, minor } => (&[], (*major, *minor)),
            };
            let header = Header {
                ino,
                mode: entry.mode(),
                uid: 0,
                gid: 0,
                nlink,
                mtime: 0,
                filesize: data.len() as u32,
                rdevmajor: rdev.0,
                rdevminor: rdev.1,
            };
            write_member(&mut out, &header, path, data);
        }
        let trailer = Header {
            nlink: 1,
            ..Header::default()
        };
        write_member(&mut out, &trailer, TRAILER, &[]);
        out
    }
}

/// The header fields this writer sets (the others are 0: devmajor, devminor,
/// check).
#[derive(Debug, Default, Clone, Copy)]
struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    rdevmajor: u32,
    rdevminor: u32,
}

/// Appends one member: header, name + NUL, padding, data, padding.
fn write_member(out: &mut Vec<u8>, header: &Header, name: &str, data: &[u8]) {
    let namesize = name.len() as u32 + 1;
    let fields = [
        header.ino,
        header.mode,
        header.uid,
        header.gid,
        header.nlink,
        header.mtime,
        header.filesize,
        0, // devmajor
        0, // devminor
        header.rdevmajor,
        header.rdevminor,
        namesize,
        0, // check
    ];
    out.extend_from_slice(MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// Pads `out` with NULs to a multiple of 4 bytes.
fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// `path` without leading `/` or `./`, checked for empty, `.` and `..`
/// components.
fn normalize(path: &str) -> Result<String> {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/');
    ensure!(!trimmed.is_empty(), "empty path in the archive: {path:?}");
    for component in trimmed.split('/') {
        ensure!(
            !component.is_empty() && component != "." && component != "..",
            "bad path for the archive: {path:?}"
        );
    }
    ensure!(!trimmed.contains('\0'), "NUL in archive path {path:?}");
    Ok(trimmed.to_owned())
}

/// One member read back by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Path name as stored.
    pub name: String,
    /// Inode number.
    pub ino: u32,
    /// Full `st_mode`.
    pub mode: u32,
    /// Link count.
    pub nlink: u32,
    /// Device numbers of a device node.
    pub rdev: (u32, u32),
    /// Contents (a symlink's target for symlinks).
    pub data: Vec<u8>,
}

/// Parses a newc archive up to its trailer, checking magic, hex fields and
/// padding. Used by the tests, and by `build_initramfs` as a final check.
pub fn parse(bytes: &[u8]) -> Result<Vec<Parsed>> {
    let mut members = Vec::new();
    let mut at = 0usize;
    loop {
        ensure!(
            at.is_multiple_of(4),
            "member at {at:#x} is not 4-byte aligned"
        );
        ensure!(
            bytes.len() >= at + HEADER_LEN,
            "truncated header at {at:#x}"
        );
        let header = &bytes[at..at + HEADER_LEN];
        ensure!(&header[..6] == MAGIC, "bad magic at {at:#x}");
        let field = |index: usize| -> Result<u32> {
            let start = 6 + index * 8;
            let text = std::str::from_utf8(&header[start..start + 8])?;
            Ok(u32::from_str_radix(text, 16)?)
        };
        let (ino, mode, nlink, filesize) = (field(0)?, field(1)?, field(4)?, field(6)? as usize);
        let rdev = (field(9)?, field(10)?);
        let namesize = field(11)? as usize;
        ensure!(namesize >= 1, "empty name at {at:#x}");
        let name_start = at + HEADER_LEN;
        let name_end = name_start + namesize;
        ensure!(bytes.len() >= name_end, "truncated name at {at:#x}");
        ensure!(bytes[name_end - 1] == 0, "name at {at:#x} lacks its NUL");
        let name = String::from_utf8(bytes[name_start..name_end - 1].to_vec())?;
        let data_start = name_end.next_multiple_of(4);
        let data_end = data_start + filesize;
        ensure!(bytes.len() >= data_end, "truncated data of {name}");
        ensure!(
            bytes[name_end..data_start].iter().all(|&b| b == 0),
            "non-zero name padding in {name}"
        );
        let next = data_end.next_multiple_of(4);
        ensure!(bytes.len() >= next, "truncated data padding of {name}");
        if name == TRAILER {
            return Ok(members);
        }
        members.push(Parsed {
            name,
            ino,
            mode,
            nlink,
            rdev,
            data: bytes[data_start..data_end].to_vec(),
        });
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let mut archive = Archive::new();
        archive
            .file("/init", 0o755, b"#!/bin/sh\necho hi\n".to_vec())
            .unwrap();
        archive
            .file("bin/busybox", 0o755, vec![0x7f, b'E', b'L', b'F', 1, 2, 3])
            .unwrap();
        archive.symlink("bin/sh", "busybox").unwrap();
        archive.char_dev("dev/console", 0o600, 5, 1).unwrap();
        archive.dir("proc", 0o555).unwrap();
        archive.file("a/b/c/empty", 0o644, Vec::new()).unwrap();
        archive
    }

    #[test]
    fn round_trip() {
        let archive = sample();
        let bytes = archive.to_bytes();
        assert_eq!(bytes.len() % 4, 0);
        let members = parse(&bytes).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a",
                "a/b",
                "a/b/c",
                "a/b/c/empty",
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "proc"
            ]
        );
        for member in &members {
            let entry = archive.get(&member.name).unwrap();
            assert_eq!(member.mode, entry.mode(), "{}", member.name);
            match &entry.node {
                Node::File(contents) => assert_eq!(&member.data, contents),
                Node::Symlink(target) => assert_eq!(member.data, target.as_bytes()),
                Node::CharDev { major, minor } => assert_eq!(member.rdev, (*major, *minor)),
                Node::Dir => assert_eq!(member.nlink, 2),
            }
        }
        let init = members.iter().find(|m| m.name == "init").unwrap();
        assert_eq!(init.mode, 0o100_755);
        let console = members.iter().find(|m| m.name == "dev/console").unwrap();
        assert_eq!(console.mode, 0o020_600);
        // Inode numbers are distinct.
        let mut inos: Vec<u32> = members.iter().map(|m| m.ino).collect();
        inos.dedup();
        assert_eq!(inos.len(), members.len());
    }

    #[test]
    fn exact_bytes_of_a_small_archive() {
        let mut archive = Archive::new();
        archive.file("ab", 0o644, b"xyz".to_vec()).unwrap();
        let bytes = archive.to_bytes();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"070701");
        for field in [1u32, 0o100_644, 0, 0, 1, 0, 3, 0, 0, 0, 0, 3, 0] {
            expected.extend_from_slice(format!("{field:08X}").to_lowercase().as_bytes());
        }
        expected.extend_from_slice(b"ab\0"); // 110 + 3 = 113 -> pad to 116
        expected.extend_from_slice(&[0; 3]);
        expected.extend_from_slice(b"xyz\0"); // 3 -> pad to 4
        expected.extend_from_slice(b"070701");
        for field in [0u32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0] {
            expected.extend_from_slice(format!("{field:08x}").as_bytes());
        }
        expected.extend_from_slice(b"TRAILER!!!\0"); // 110 + 11 = 121 -> 124
        expected.extend_from_slice(&[0; 3]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn deterministic_and_later_file_wins() {
        let mut a = sample();
        let b = sample();
        assert_eq!(a.to_bytes(), b.to_bytes());
        a.file("init", 0o700, b"other".to_vec()).unwrap();
        let members = parse(&a.to_bytes()).unwrap();
        let init = members.iter().find(|m| m.name == "init").unwrap();
        assert_eq!(init.data, b"other");
        assert_eq!(init.mode, 0o100_700);
    }

    #[test]
    fn rejects_bad_paths_and_conflicts() {
        let mut archive = sample();
        assert!(archive.file("", 0o644, Vec::new()).is_err());
        assert!(archive.file("a/../b", 0o644, Vec::new()).is_err());
        assert!(archive.file("init/x", 0o644, Vec::new()).is_err()); // init is a file
        assert!(archive.dir("init", 0o755).is_err());
        assert!(parse(b"070702").is_err());
        let bytes = archive.to_bytes();
        assert!(parse(&bytes[..bytes.len() - 8]).is_err());
    }

    /// Cross-checks with an independent reader when one is installed
    /// (`busybox cpio` or GNU `cpio`); skipped otherwise.
    #[test]
    fn listed_by_an_external_cpio() {
        let bytes = sample().to_bytes();
        let candidates: [&[&str]; 2] = [&["busybox", "cpio", "-t"], &["cpio", "-t", "--quiet"]];
        for command in candidates {
            let Ok(mut child) = std::process::Command::new(command[0])
                .args(&command[1..])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
            else {
                continue;
            };
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
            let output = child.wait_with_output().unwrap();
            if !output.status.success() {
                // e.g. a busybox without the cpio applet.
                continue;
            }
            let listing = String::from_utf8(output.stdout).unwrap();
            let names: Vec<&str> = listing.lines().collect();
            assert!(names.contains(&"bin/sh"), "{listing}");
            assert!(names.contains(&"dev/console"), "{listing}");
            assert!(names.contains(&"a/b/c/empty"), "{listing}");
            assert_eq!(names.len(), 11, "{listing}");
            eprintln!("checked with {}", command.join(" "));
            return;
        }
        eprintln!("no external cpio: skipped");
    }
}
