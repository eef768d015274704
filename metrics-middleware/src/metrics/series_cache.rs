//! Each worker's cache of resolved series.
//!
//! Looking up a series through `MetricVec::with_label_values` hashes every
//! label value with SipHash and takes a lock, once per metric: four times per
//! request here. A worker instead keeps the children it has resolved, keyed
//! by route, method and status, in a map only it touches. The keys are
//! bounded (route templates come from the app, methods and statuses are
//! bounded label values), so the cache is too; raw paths, which are not
//! bounded, are never cached.
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use actix_web::http::StatusCode;

use super::instruments::{Instruments, LabelValues, Series};

/// Series resolved by one worker.
#[derive(Default)]
pub(crate) struct SeriesCache {
    by_route: RefCell<HashMap<Box<str>, Vec<Entry>, FxBuildHasher>>,
}

struct Entry {
    method: &'static str,
    status: StatusCode,
    series: Rc<Series>,
}

impl SeriesCache {
    /// The series of `route`, `method` and `status`, resolved on first use.
    pub(crate) fn get(
        &self,
        instruments: &Instruments,
        method: &'static str,
        route: &str,
        status: StatusCode,
    ) -> Rc<Series> {
        let mut by_route = self.by_route.borrow_mut();
        if let Some(entries) = by_route.get(route) {
            if let Some(entry) = entries
                .iter()
                .find(|e| e.status == status && e.method == method)
            {
                return Rc::clone(&entry.series);
            }
        }
        let series = Rc::new(instruments.series(&LabelValues {
            method,
            route,
            status: status.as_str(),
        }));
        by_route.entry(route.into()).or_default().push(Entry {
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
