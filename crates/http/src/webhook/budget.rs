//! A process-wide budget of memory for webhook bodies: what every body
//! being read or handled holds at once. Charged with bytes that actually
//! arrived, never from what `Content-Length` announces, so a sender who
//! announces much and sends little holds nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::IntGauge;

#[derive(Debug)]
pub(crate) struct BodyBudget {
    limit: usize,
    in_use: AtomicUsize,
    /// `ephemera_webhook_body_bytes`: what is charged now.
    gauge: IntGauge,
}

impl BodyBudget {
    pub(crate) fn new(limit: usize, gauge: IntGauge) -> Arc<Self> {
        Arc::new(Self {
            limit,
            in_use: AtomicUsize::new(0),
            gauge,
        })
    }

    /// An empty charge against the budget, returned when dropped.
    pub(crate) fn charge(budget: Arc<Self>) -> Charge {
        Charge { budget, bytes: 0 }
    }

    fn publish(&self) {
        let now = self.in_use.load(Ordering::Relaxed);
        self.gauge.set(i64::try_from(now).unwrap_or(i64::MAX));
    }
}

/// Bytes one body holds; given back when dropped, whichever way the
/// request ends (answered, refused, timed out, connection gone).
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Charge {
    /// Raises this charge to `bytes`; false, changing nothing, when the
    /// budget cannot cover it.
    pub(crate) fn grow_to(&mut self, bytes: usize) -> bool {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|n| *n > 0) else {
            return true;
        };
        let limit = self.budget.limit;
        let granted = self
            .budget
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(more).filter(|total| *total <= limit)
            })
            .is_ok();
        if granted {
            self.bytes = bytes;
            self.budget.publish();
        }
        granted
    }
}

impl Charge {
    /// Lowers this charge to `bytes` (memory given back early).
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        if let Some(less) = self.bytes.checked_sub(bytes).filter(|n| *n > 0) {
            self.budget.in_use.fetch_sub(less, Ordering::AcqRel);
            self.bytes = bytes;
            self.budget.publish();
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.in_use.fetch_sub(self.bytes, Ordering::AcqRel);
            self.budget.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_to_the_limit_and_are_returned_on_drop() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let budget = BodyBudget::new(100, gauge.clone());
        let mut a = BodyBudget::charge(budget.clone());
        let mut b = BodyBudget::charge(budget.clone());
        assert!(a.grow_to(60));
        assert!(a.grow_to(40), "shrinking is a no-op");
        assert!(!b.grow_to(41), "60 + 41 > 100");
        assert!(b.grow_to(40));
        assert_eq!(gauge.get(), 100);
        drop(a);
        assert_eq!(gauge.get(), 40);
        assert!(b.grow_to(100));
        b.shrink_to(30);
        assert_eq!(gauge.get(), 30);
        b.shrink_to(50);
        assert_eq!(gauge.get(), 30, "shrink never grows");
        drop(b);
        assert_eq!(gauge.get(), 0);
        assert_eq!(budget.in_use.load(Ordering::Relaxed), 0);
    }
}
