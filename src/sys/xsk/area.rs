//! The UMEM's memory: an anonymous, page-aligned mapping the socket owns and unmaps last.

use std::io;
use std::ptr::NonNull;

/// `len` bytes of private anonymous memory, unmapped on drop.
pub(super) struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    /// Map `len` bytes (populated, so the first packets do not fault pages in).
    pub(super) fn new(len: usize) -> io::Result<Area> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; no existing memory
        // is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Area { ptr, len })
    }

    /// The whole area, for registering it as a UMEM.
    pub(super) fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// A pointer to bytes `off..off + len` of the area, or None when out of bounds. Making
    /// the pointer is safe; reading or writing through it needs the bytes to be ours.
    pub(super) fn span(&self, off: u64, len: u32) -> Option<NonNull<[u8]>> {
        let off = usize::try_from(off).ok()?;
        let end = off.checked_add(usize::try_from(len).ok()?)?;
        if end > self.len {
            return None;
        }
        // SAFETY: off <= end <= len, so the offset pointer stays inside the mapping (or one
        // past its end for an empty span at the very end), which `self` keeps mapped.
        let start = unsafe { self.ptr.add(off) };
        Some(NonNull::slice_from_raw_parts(start, end - off))
    }

    /// Bytes `off..off + len` of the area, or None when out of bounds.
    ///
    /// # Safety
    /// The caller must own those bytes for the lifetime of the slice: neither the kernel (a
    /// frame on the fill or tx ring) nor another slice may access them meanwhile.
    pub(super) unsafe fn bytes_mut(&mut self, off: u64, len: u32) -> Option<&mut [u8]> {
        let span = self.span(off, len)?;
        // SAFETY: the span lies inside the mapping (checked by `span`), which lives as long as
        // `self`; exclusivity is the caller's promise.
        Some(unsafe { &mut *span.as_ptr() })
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `new`, unmapped only here. The
        // kernel keeps its own pin on pages a still-closing socket uses.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
