/// Tells the other processes on the same database that work was committed
/// (a delivery applied, a command queued), so their workers take it now
/// rather than at their next poll. Fire and forget: it returns at once,
/// and a lost announcement costs only latency, since every worker still
/// polls.
pub trait WorkAnnouncer: Send + Sync {
    fn announce(&self);
}
