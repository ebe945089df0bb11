//! The bytes of a kernel or ramdisk file, mapped rather than read.
//!
//! `xl-rs create` hands the guest image to the hypervisor page by page (the
//! hvctl driver pins the pages and the hypervisor copies from them), so the
//! file's own page-cache pages can be the source: mapping the file avoids
//! copying tens of megabytes into a buffer first. An empty file, or one that
//! cannot be mapped (a pipe, a device), is read instead.
#![allow(unsafe_code, reason = "mmap(2) of kernel and ramdisk files")]

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::Path;

/// A file's bytes: a private read-only mapping, or a copy.
#[derive(Debug)]
pub struct FileBytes {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Mapped {
        ptr: *mut core::ffi::c_void,
        len: usize,
    },
    Read(Vec<u8>),
}

impl FileBytes {
    /// Maps (or reads) the whole file at `path`.
    ///
    /// # Errors
    ///
    /// Opening, sizing or reading the file.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if len > 0 && file.metadata()?.is_file() {
            // SAFETY: a fresh private read-only mapping of `len` bytes of an
            // open regular file, placed by the kernel (no fixed address), so
            // it aliases nothing of this process. Its pages are only read
            // through the slice `Deref` gives, which lives no longer than
            // `self`. (Should another process truncate the file meanwhile,
            // reading past its new end raises SIGBUS, as for any mapping.)
            let mapped = unsafe {
                rustix::mm::mmap(
                    core::ptr::null_mut(),
                    len,
                    rustix::mm::ProtFlags::READ,
                    rustix::mm::MapFlags::PRIVATE,
                    &file,
                    0,
                )
            };
            if let Ok(ptr) = mapped {
                return Ok(Self {
                    inner: Inner::Mapped { ptr, len },
                });
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Self {
            inner: Inner::Read(bytes),
        })
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            // SAFETY: `ptr` maps `len` readable bytes for as long as `self`
            // lives (unmapped only in `drop`), and nothing writes them.
            Inner::Mapped { ptr, len } => unsafe {
                core::slice::from_raw_parts(ptr.cast::<u8>(), *len)
            },
            Inner::Read(bytes) => bytes,
        }
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let Inner::Mapped { ptr, len } = self.inner {
            // SAFETY: the mapping made in `open`, unmapped once; no slice of
            // it outlives `self`.
            let _ = unsafe { rustix::mm::munmap(ptr, len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_file_reads_as_its_bytes() {
        let dir = std::env::temp_dir().join(format!("xl-rs-file-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("image");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let bytes = FileBytes::open(&path).unwrap();
        assert!(matches!(bytes.inner, Inner::Mapped { .. }));
        assert_eq!(&*bytes, &data[..]);
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(FileBytes::open(&empty).unwrap().is_empty());
        assert!(FileBytes::open(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
