//! Where a dial is placed among the nodes sharing a database (docs/cluster.md):
//! the less loaded of two live nodes picked at random (power of two choices).
//! A node's load is the live calls the database has it carrying, read at most
//! [`READ_EVERY`] ago, plus the dials this node has sent it since: a burst of
//! dials is spread, not herded onto the node that looked emptiest.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bond_store::clock::monotonic;
use bond_store::db::DbError;
use bond_store::Store;
use rand::Rng;

/// How long the loads read are used for.
pub const READ_EVERY: Duration = Duration::from_millis(200);

/// The nodes' loads as last read, with the dials sent since.
#[derive(Debug, Default)]
pub struct Placement {
    loads: Mutex<Loads>,
}

#[derive(Debug, Default)]
struct Loads {
    /// (node, calls) of the live nodes.
    nodes: Vec<(String, i64)>,
    read_at: Option<Instant>,
}

impl Placement {
    /// The node a new unlinked dial goes to; `None` when no node is registered yet.
    pub async fn choose(&self, store: &Store) -> Result<Option<String>, DbError> {
        let stale = self.lock().read_at.is_none_or(|at| monotonic().duration_since(at) >= READ_EVERY);
        if stale {
            let nodes = store.live_node_loads().await?;
            *self.lock() = Loads { nodes, read_at: Some(monotonic()) };
        }
        let mut rng = rand::thread_rng();
        let mut loads = self.lock();
        let n = loads.nodes.len();
        if n == 0 {
            return Ok(None);
        }
        let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
        Ok(Some(less_loaded(&mut loads.nodes, a, b)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loads> {
        self.loads.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Of nodes `a` and `b`, the one with fewer calls (`a` on a tie), counted one call busier.
fn less_loaded(nodes: &mut [(String, i64)], a: usize, b: usize) -> String {
    let chosen = if nodes[b].1 < nodes[a].1 { b } else { a };
    nodes[chosen].1 += 1;
    nodes[chosen].0.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn two_choices_take_the_lighter_node_and_count_the_dial_against_it() {
        let mut nodes = vec![("a".to_owned(), 5), ("b".to_owned(), 3)];
        assert_eq!(less_loaded(&mut nodes, 0, 1), "b");
        assert_eq!(less_loaded(&mut nodes, 0, 1), "b");
        // Level now: the first named wins the tie.
        assert_eq!(less_loaded(&mut nodes, 1, 0), "b");
        assert_eq!(nodes, [("a".to_owned(), 5), ("b".to_owned(), 6)]);
        assert_eq!(less_loaded(&mut nodes, 0, 1), "a");
    }

    #[test]
    fn a_burst_of_dials_is_spread_evenly_over_nodes_that_started_level() {
        let mut nodes: Vec<(String, i64)> = ["a", "b", "c"].iter().map(|n| (n.to_string(), 0)).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(41);
        for _ in 0..300 {
            let (a, b) = (rng.gen_range(0..3), rng.gen_range(0..3));
            less_loaded(&mut nodes, a, b);
        }
        for (node, legs) in &nodes {
            assert!((90..=110).contains(legs), "{node}: {legs} of 300");
        }
    }
}
