//! A frame that announces 4 GiB is refused before anything is allocated for it.
//!
//! This file is its own test binary with a global allocator that records the largest request, and holds a
//! single test so no other test allocates at the same time.
#![allow(unsafe_code)] // implementing `GlobalAlloc` is unsafe by definition; we only forward to `System`.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is a test failure

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use meshwork_wire::{BoundedVec, FrameError, frame};

struct Recording;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout as given to us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Recording = Recording;

#[test]
fn hostile_lengths_allocate_nothing_large() {
    // A 4 GiB frame header.
    LARGEST.store(0, Ordering::Relaxed);
    let result = frame::decode::<Vec<u8>>(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3], 1 << 20);
    assert!(matches!(result, Err(FrameError::TooLarge { .. })));
    assert!(
        LARGEST.load(Ordering::Relaxed) < 4096,
        "allocated {} bytes",
        LARGEST.load(Ordering::Relaxed)
    );

    // A collection announcing u32::MAX elements inside a small frame.
    let mut body = vec![0xff, 0xff, 0xff, 0xff, 0x0f]; // varint u32::MAX
    body.extend_from_slice(&[0; 16]);
    LARGEST.store(0, Ordering::Relaxed);
    let result = meshwork_wire::decode::<BoundedVec<u64, 1000>>(&body);
    assert!(result.is_err());
    // u32::MAX zero-sized elements: only the bound stops the loop.
    let result = meshwork_wire::decode::<BoundedVec<(), 1000>>(&body[..5]);
    assert!(matches!(
        result,
        Err(meshwork_wire::DecodeError::OverBound { max: 1000, len: 1001 })
    ));
    assert!(
        LARGEST.load(Ordering::Relaxed) < 4096,
        "allocated {} bytes",
        LARGEST.load(Ordering::Relaxed)
    );

    // Within the bound, but more than the input can hold: reservation stays small too.
    let body = [0xe8, 0x07, 1, 2, 3]; // 1000 elements announced, 3 bytes follow
    LARGEST.store(0, Ordering::Relaxed);
    let result = meshwork_wire::decode::<BoundedVec<[u64; 32], 1000>>(&body);
    assert!(result.is_err());
    assert!(
        LARGEST.load(Ordering::Relaxed) <= 64 * 1024 + 4096,
        "allocated {}",
        LARGEST.load(Ordering::Relaxed)
    );
}
