//! A thread's provided buffers: up to [`Pool::most`] buffers of
//! [`Pool::size`] bytes (the server's: [`COUNT`] of [`READ_BUF_SIZE`]) that the
//! kernel picks from only when a recv has data, so a connection waiting for its
//! next request or answer owns no buffer at all.
//!
//! Where the kernel has them (5.19), the buffers are handed over through a
//! registered buffer ring (`IORING_REGISTER_PBUF_RING`): giving a buffer back is
//! two stores into shared memory, no system call. Older kernels get the same
//! buffers through `IORING_OP_PROVIDE_BUFFERS` requests instead, one per buffer
//! given back.
//!
//! The pool starts with [`Pool::first`] buffers and doubles each time a batch of
//! completions found it empty (`ENOBUFS`), up to [`Pool::most`]. The kernel takes
//! buffers from a ring in order and each comes back to its tail, so every
//! buffer handed over is soon written to: handing over only as many as the
//! busiest batch needed keeps the resident memory to that, not to the maximum.

use std::io;
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{opcode, squeue, IoUring};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use proto::READ_BUF_SIZE;

/// The buffer group every recv of a ring selects from (one group per ring).
pub const GROUP: u16 = 0;
/// The server's pool: most buffers per thread (the ring's size: a power of
/// two), 4 MiB of [`READ_BUF_SIZE`].
pub const COUNT: u16 = 256;
/// The server's pool: buffers handed over at first, 256 KiB.
pub const FIRST: u16 = 16;

/// The shape of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Bytes per buffer.
    pub size: usize,
    /// Most buffers: the ring's size, a power of two (at most 32,768).
    pub most: u16,
    /// Buffers handed over at first.
    pub first: u16,
}

impl Pool {
    /// The server's: [`COUNT`] buffers of [`READ_BUF_SIZE`], [`FIRST`] at first.
    pub const SERVER: Pool = Pool { size: READ_BUF_SIZE, most: COUNT, first: FIRST };
}

/// One slot of a buffer ring, laid out as the kernel's `struct io_uring_buf`.
/// The `resv` field of slot 0 is the ring's tail.
#[repr(C)]
struct Slot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<Slot>() == std::mem::size_of::<io_uring::types::BufRingEntry>());

/// Anonymous memory: page-aligned, and resident only once written.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        let size = NonZeroUsize::new(len).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a new private anonymous mapping aliases no existing memory.
        let ptr =
            unsafe { mmap_anonymous(None, size, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_PRIVATE) }?;
        Ok(Mapping { ptr: ptr.cast(), len })
    }

    /// Unmap, unless `keep` (the kernel may still use the memory).
    fn release(&mut self, keep: bool) {
        if !keep {
            // SAFETY: mapped in `new` with this length and not unmapped before
            // (the caller releases each mapping once, from `Drop`).
            let _ = unsafe { munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// See the module documentation.
pub struct Buffers {
    pool: Pool,
    /// `most * size` bytes; buffer `bid` starts at `bid * size`.
    data: Mapping,
    /// The registered ring of `most` slots; `None` on kernels that take
    /// buffers through PROVIDE_BUFFERS requests.
    ring: Option<Mapping>,
    /// The next tail of the ring (free-running; the kernel masks it).
    tail: u16,
    /// Buffers `0..provided` have been handed to the kernel.
    provided: u16,
    /// The kernel may still hold the memory: never unmap it.
    leaked: bool,
}

impl Buffers {
    /// The server's pool ([`Pool::SERVER`]): see [`Buffers::with_pool`].
    pub fn new(ring: &IoUring) -> io::Result<(Buffers, Option<squeue::Entry>)> {
        Buffers::with_pool(ring, Pool::SERVER)
    }

    /// Map the buffers of `pool` and hand the first [`Pool::first`] to `ring`.
    /// Returns the PROVIDE_BUFFERS request the caller must submit when the
    /// kernel has no buffer rings.
    pub fn with_pool(ring: &IoUring, pool: Pool) -> io::Result<(Buffers, Option<squeue::Entry>)> {
        if !pool.most.is_power_of_two() || pool.most > 1 << 15 || pool.first == 0 || pool.first > pool.most {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad buffer pool {pool:?}")));
        }
        let data = Mapping::new(pool.most as usize * pool.size)?;
        let slots = Mapping::new(pool.most as usize * std::mem::size_of::<Slot>())?;
        // SAFETY: `slots` is page-aligned and holds `most` slots; it stays mapped
        // until the ring is unregistered (or forever, if the buffers are leaked).
        let registered =
            unsafe { ring.submitter().register_buf_ring_with_flags(slots.ptr.as_ptr() as u64, pool.most, GROUP, 0) };
        let mut bufs = Buffers { pool, data, ring: Some(slots), tail: 0, provided: 0, leaked: false };
        match registered {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // No buffer rings (before 5.19): the slots were never registered.
                if let Some(mut slots) = bufs.ring.take() {
                    slots.release(false);
                }
            }
            Err(e) => return Err(e),
        }
        let first = bufs.grow();
        Ok((bufs, first))
    }

    /// Buffers handed to the kernel so far.
    pub fn provided(&self) -> u16 {
        self.provided
    }

    /// Does the kernel take buffers through a registered ring (5.19 and later)?
    pub fn is_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Hand the kernel more buffers (as many again, up to [`Pool::most`]) after
    /// it ran out. Returns the request to submit on kernels without buffer rings.
    pub fn grow(&mut self) -> Option<squeue::Entry> {
        let from = self.provided;
        let to = (from.saturating_mul(2)).clamp(self.pool.first, self.pool.most);
        if from == to {
            return None;
        }
        self.provided = to;
        if self.ring.is_some() {
            for bid in from..to {
                self.put(bid);
            }
            return None;
        }
        Some(opcode::ProvideBuffers::new(self.addr(from), self.pool.size as i32, to - from, GROUP, from).build())
    }

    /// The pool's shape.
    pub fn pool(&self) -> Pool {
        self.pool
    }

    fn addr(&self, bid: u16) -> *mut u8 {
        assert!(bid < self.pool.most, "buffer {bid}");
        // SAFETY: in bounds of the data mapping (`most * size` bytes) for any bid < most.
        unsafe { self.data.ptr.as_ptr().add(bid as usize * self.pool.size) }
    }

    /// The first `len` bytes of buffer `bid`, just filled by a recv completion.
    pub fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(len <= self.pool.size, "{len} bytes in one buffer");
        // SAFETY: in bounds (`addr` checks the id); the kernel wrote these bytes
        // before posting the completion, and does not touch the buffer again
        // until it is given back.
        unsafe { std::slice::from_raw_parts(self.addr(bid), len) }
    }

    /// Give buffer `bid` back to the kernel once its contents were consumed.
    /// Returns the request to submit on kernels without buffer rings.
    pub fn give_back(&mut self, bid: u16) -> Option<squeue::Entry> {
        if self.ring.is_some() {
            self.put(bid);
            return None;
        }
        Some(opcode::ProvideBuffers::new(self.addr(bid), self.pool.size as i32, 1, GROUP, bid).build())
    }

    /// Write buffer `bid` into the next free slot and publish the new tail.
    fn put(&mut self, bid: u16) {
        let addr = self.addr(bid) as u64;
        let Some(slots) = &self.ring else { return };
        let slots = slots.ptr.cast::<Slot>().as_ptr();
        let index = (self.tail & (self.pool.most - 1)) as usize;
        // SAFETY: `index < most`; the slot lies beyond the published tail, so the
        // kernel does not read it, and only its addr/len/bid fields are written
        // (slot 0's `resv` is the tail, written only through the atomic below).
        unsafe {
            let slot = slots.add(index);
            ptr::addr_of_mut!((*slot).addr).write(addr);
            ptr::addr_of_mut!((*slot).len).write(self.pool.size as u32);
            ptr::addr_of_mut!((*slot).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: slot 0's `resv` is an aligned u16 that lives as long as the
        // mapping; the kernel reads it with acquire semantics, and this release
        // store makes the slot written above visible before the new tail.
        let tail = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*slots).resv)) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Take the ring back from the kernel; call when no recv is in flight.
    pub fn unregister(&mut self, ring: &IoUring) -> io::Result<()> {
        if self.ring.is_some() {
            ring.submitter().unregister_buf_ring(GROUP)?;
        }
        Ok(())
    }

    /// Never unmap the memory: the kernel may still write into it.
    pub fn leak(&mut self) {
        self.leaked = true;
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        // The worker drops the buffers only once no request is in flight (it
        // calls `leak` otherwise), after closing the ring.
        self.data.release(self.leaked);
        if let Some(slots) = &mut self.ring {
            slots.release(self.leaked);
        }
    }
}
