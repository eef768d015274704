//! Each worker's cache of resolved series.
//!
//! Looking up a series through `MetricVec::with_label_values` hashes every
//! label value with SipHash and takes a lock, once per metric: four times per
//! request here. A worker instead keeps the children it has resolved, by
//! route, method and status, in a table only it touches. The keys are
//! bounded (route templates come from the app, methods and statuses are
//! bounded label values), so the cache is too; raw paths, which are not
//! bounded, are never cached.
use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use actix_web::http::StatusCode;

use super::instruments::{Instruments, LabelValues, Series};
use super::Exemplars;

/// Series resolved by one worker, by route slot: 0 for requests that
/// matched no route, a route's id + 1 for the others (see
/// `middleware::routes`), so that a lookup is an index and a short scan.
#[derive(Default)]
pub(crate) struct SeriesCache {
    by_slot: RefCell<Vec<Vec<Entry>>>,
}

struct Entry {
    method: &'static str,
    status: StatusCode,
    series: Rc<Series>,
}

impl SeriesCache {
    /// The series of `route` (its label value), `method` and `status`,
    /// resolved on first use; `slot` is `None` for labels that are not to
    /// be cached (raw paths).
    pub(crate) fn get(
        &self,
        instruments: &Instruments,
        exemplars: &Exemplars,
        slot: Option<usize>,
        method: &'static str,
        route: &str,
        status: StatusCode,
    ) -> Rc<Series> {
        let resolve = |exemplars| {
            Rc::new(instruments.series(
                &LabelValues {
                    method,
                    route,
                    status: status.as_str(),
                },
                exemplars,
            ))
        };
        // Raw paths are unbounded: neither cached nor given exemplars (which
        // are kept for good).
        let Some(slot) = slot else {
            return resolve(None);
        };
        let mut by_slot = self.by_slot.borrow_mut();
        if by_slot.len() <= slot {
            by_slot.resize_with(slot + 1, Vec::new);
        }
        let entries = &mut by_slot[slot];
        // Methods are `&'static` labels: most compare by address.
        if let Some(entry) = entries
            .iter()
            .find(|e| e.status == status && (std::ptr::eq(e.method, method) || e.method == method))
        {
            return Rc::clone(&entry.series);
        }
        let series = resolve(Some(exemplars));
        entries.push(Entry {
            method,
            status,
            series: Rc::clone(&series),
        });
        series
    }
}

/// Hashes with [`FxHasher`], for maps keyed by route templates.
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// The Fx hash of rustc: a multiply and a rotate per word. The keys are
/// route templates written by the application, not input from clients, so
/// SipHash's protection against chosen collisions buys nothing here.
#[derive(Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}
