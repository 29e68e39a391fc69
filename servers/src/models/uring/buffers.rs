//! A thread's provided buffers: [`COUNT`] buffers of [`READ_BUF_SIZE`] that the
//! kernel picks from only when a recv has data, so a connection waiting for its
//! next request owns no buffer at all.
//!
//! Where the kernel has them (5.19), the buffers are handed over through a
//! registered buffer ring (`IORING_REGISTER_PBUF_RING`): giving a buffer back is
//! two stores into shared memory, no system call. Older kernels get the same
//! buffers through `IORING_OP_PROVIDE_BUFFERS` requests instead, one per buffer
//! given back.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{opcode, squeue, IoUring};
use proto::READ_BUF_SIZE;

/// The buffer group every recv of a ring selects from (one group per ring).
pub const GROUP: u16 = 0;
/// Buffers per thread: a power of two, as buffer rings require. Each recv
/// completion holds one only until it is handled, within the same batch; when
/// a batch needs more, the recvs that found none end with `ENOBUFS` and are
/// re-armed after the batch has given its buffers back.
pub const COUNT: u16 = 256;

/// One slot of a buffer ring, laid out as the kernel's `struct io_uring_buf`.
/// The `resv` field of slot 0 is the ring's tail.
#[repr(C)]
struct Slot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () =
    assert!(std::mem::size_of::<Slot>() == std::mem::size_of::<io_uring::types::BufRingEntry>());

/// See the module documentation.
pub struct Buffers {
    /// `COUNT * READ_BUF_SIZE` bytes; buffer `bid` starts at `bid * READ_BUF_SIZE`.
    data: NonNull<u8>,
    /// The registered ring of `COUNT` slots, page-aligned; `None` on kernels
    /// that take buffers through PROVIDE_BUFFERS requests.
    ring: Option<NonNull<Slot>>,
    /// The next tail of the ring (free-running; the kernel masks it).
    tail: u16,
    /// The kernel may still hold the memory: never free it.
    leaked: bool,
}

fn data_layout() -> Layout {
    // Cache-line alignment is enough for recv; large zeroed allocations come
    // from fresh anonymous pages, so untouched buffers cost no resident memory.
    Layout::from_size_align(COUNT as usize * READ_BUF_SIZE, 64).expect("constant layout")
}

fn ring_layout() -> Layout {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    Layout::from_size_align(COUNT as usize * std::mem::size_of::<Slot>(), page)
        .expect("page-aligned ring layout")
}

impl Buffers {
    /// Allocate the buffers and hand them to `ring`. Returns the PROVIDE_BUFFERS
    /// request the caller must submit when the kernel has no buffer rings.
    pub fn new(ring: &IoUring) -> io::Result<(Buffers, Option<squeue::Entry>)> {
        // SAFETY: the layout has a non-zero size.
        let data = NonNull::new(unsafe { alloc::alloc_zeroed(data_layout()) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut bufs = Buffers {
            data,
            ring: None,
            tail: 0,
            leaked: false,
        };
        // SAFETY: the layout has a non-zero size.
        let slots = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout()) }.cast::<Slot>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        bufs.ring = Some(slots);
        for bid in 0..COUNT {
            bufs.put(bid);
        }
        // SAFETY: `slots` is page-aligned, holds COUNT slots, and stays allocated
        // until `unregister` has run (or forever, if `leak` was called).
        let registered = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(slots.as_ptr() as u64, COUNT, GROUP, 0)
        };
        match registered {
            Ok(()) => Ok((bufs, None)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // No buffer rings (before 5.19): provide all buffers at once.
                bufs.ring = None;
                // SAFETY: the slots were never registered; nothing else points to them.
                unsafe { alloc::dealloc(slots.as_ptr().cast(), ring_layout()) };
                let all = opcode::ProvideBuffers::new(
                    data.as_ptr(),
                    READ_BUF_SIZE as i32,
                    COUNT,
                    GROUP,
                    0,
                )
                .build();
                Ok((bufs, Some(all)))
            }
            Err(e) => Err(e),
        }
    }

    /// Does the kernel take buffers through a registered ring (5.19 and later)?
    pub fn is_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// The first `len` bytes of buffer `bid`, just filled by a recv completion.
    pub fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < COUNT && len <= READ_BUF_SIZE, "buffer {bid} of {len} bytes");
        // SAFETY: in bounds (checked above); the kernel wrote these bytes before
        // posting the completion, and does not touch the buffer again until it
        // is given back.
        unsafe {
            std::slice::from_raw_parts(self.data.as_ptr().add(bid as usize * READ_BUF_SIZE), len)
        }
    }

    /// Give buffer `bid` back to the kernel once its contents were consumed.
    /// Returns the request to submit on kernels without buffer rings.
    pub fn give_back(&mut self, bid: u16) -> Option<squeue::Entry> {
        if self.ring.is_some() {
            self.put(bid);
            return None;
        }
        // SAFETY (of the pointer arithmetic): in bounds for any bid < COUNT.
        let addr = unsafe { self.data.as_ptr().add(bid as usize * READ_BUF_SIZE) };
        Some(opcode::ProvideBuffers::new(addr, READ_BUF_SIZE as i32, 1, GROUP, bid).build())
    }

    /// Write buffer `bid` into the next free slot and publish the new tail.
    fn put(&mut self, bid: u16) {
        let Some(slots) = self.ring else { return };
        assert!(bid < COUNT);
        let index = (self.tail & (COUNT - 1)) as usize;
        // SAFETY: `index < COUNT`; the slot lies beyond the published tail, so the
        // kernel does not read it, and only its addr/len/bid fields are written
        // (slot 0's `resv` is the tail, written only through the atomic below).
        unsafe {
            let slot = slots.as_ptr().add(index);
            let addr = self.data.as_ptr().add(bid as usize * READ_BUF_SIZE);
            ptr::addr_of_mut!((*slot).addr).write(addr as u64);
            ptr::addr_of_mut!((*slot).len).write(READ_BUF_SIZE as u32);
            ptr::addr_of_mut!((*slot).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: slot 0's `resv` is a properly aligned u16 that lives as long as
        // the ring; the kernel reads it with acquire semantics, and the release
        // store makes the slot written above visible before the new tail.
        let tail = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*slots.as_ptr()).resv)) };
        tail.store(self.tail, Ordering::Release);
    }

    /// Take the ring back from the kernel; call when no recv is in flight.
    pub fn unregister(&mut self, ring: &IoUring) -> io::Result<()> {
        if self.ring.is_some() {
            ring.submitter().unregister_buf_ring(GROUP)?;
        }
        Ok(())
    }

    /// Never free the memory: the kernel may still write into it.
    pub fn leak(&mut self) {
        self.leaked = true;
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: allocated in `new` with these layouts; the worker drops the
        // buffers only after every recv has completed and the ring was
        // unregistered (or after the ring itself was closed), and calls `leak`
        // otherwise.
        unsafe {
            alloc::dealloc(self.data.as_ptr(), data_layout());
            if let Some(slots) = self.ring {
                alloc::dealloc(slots.as_ptr().cast(), ring_layout());
            }
        }
    }
}
