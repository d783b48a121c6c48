//! Membership: the nodes sharing this database. Each holds a lease it renews
//! every second with its load; a node whose lease lapsed is dead, and any
//! other node ends the calls it carried, then removes it. Leases are read and
//! written on the database's clock, so nodes' own clocks need not agree.

use sqlx::Row;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;

impl Store {
    /// Register this node (again, after a restart), leased for `lease_ms`.
    pub async fn register_node(&self, role: &str, http_url: &str, lease_ms: i64) -> Result<(), DbError> {
        let now = self.db.now_millis_sql();
        sqlx::query(&format!(
            "INSERT INTO cluster_nodes (node_id, role, http_url, started_at, lease_until, legs) \
             VALUES ($1, $2, $3, $4, {now} + $5, 0) ON CONFLICT (node_id) DO UPDATE SET \
             role = excluded.role, http_url = excluded.http_url, started_at = excluded.started_at, \
             lease_until = excluded.lease_until, legs = 0"
        ))
        .bind(self.node_id())
        .bind(role)
        .bind(http_url)
        .bind(rfc3339_now())
        .bind(lease_ms)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Renew this node's lease for `lease_ms` with its load (legs, and CPU in
    /// percent of one core); false if it was removed meanwhile (it was taken
    /// for dead: its calls were ended).
    pub async fn renew_lease(&self, legs: i64, cpu_percent: i64, lease_ms: i64) -> Result<bool, DbError> {
        let now = self.db.now_millis_sql();
        let renewed = sqlx::query(&format!(
            "UPDATE cluster_nodes SET lease_until = {now} + $1, legs = $2, cpu_percent = $3 WHERE node_id = $4"
        ))
        .bind(lease_ms)
        .bind(legs)
        .bind(cpu_percent)
        .bind(self.node_id())
        .execute(self.db.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Leave the cluster (a clean stop, after ending this node's calls).
    pub async fn deregister_node(&self) -> Result<(), DbError> {
        sqlx::query("DELETE FROM cluster_nodes WHERE node_id = $1")
            .bind(self.node_id())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Where node `node_id`'s HTTP API answers, if it is registered.
    pub async fn node_http_url(&self, node_id: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT http_url FROM cluster_nodes WHERE node_id = $1")
            .bind(node_id)
            .fetch_optional(self.db.pool())
            .await?)
    }

    /// The nodes carrying calls (not `control` ones) holding a lease now,
    /// each with the live calls it carries, by id.
    pub async fn live_node_loads(&self) -> Result<Vec<(String, i64)>, DbError> {
        let now = self.db.now_millis_sql();
        let rows = sqlx::query(&format!(
            "SELECT n.node_id, (SELECT COUNT(*) FROM calls c WHERE c.node_id = n.node_id AND c.ended_at IS NULL) \
             FROM cluster_nodes n WHERE n.lease_until >= {now} AND n.role <> 'control' ORDER BY n.node_id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Whether node `node_id` holds a lease now (false once it lapsed or the node was removed).
    pub async fn holds_lease(&self, node_id: &str) -> Result<bool, DbError> {
        let now = self.db.now_millis_sql();
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM cluster_nodes WHERE node_id = $1 AND lease_until >= {now}"
        ))
        .bind(node_id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(count > 0)
    }

    /// How many nodes hold a lease now (at least this one, while it runs).
    pub async fn live_node_count(&self) -> Result<i64, DbError> {
        let now = self.db.now_millis_sql();
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM cluster_nodes WHERE lease_until >= {now}"))
                .fetch_one(self.db.pool())
                .await?;
        Ok(count.max(1))
    }

    /// The nodes whose lease has lapsed: dead.
    pub async fn lapsed_nodes(&self) -> Result<Vec<String>, DbError> {
        let now = self.db.now_millis_sql();
        Ok(sqlx::query_scalar(&format!(
            "SELECT node_id FROM cluster_nodes WHERE lease_until < {now} AND node_id <> $1 ORDER BY node_id"
        ))
        .bind(self.node_id())
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Remove dead node `node_id`, once its calls are ended; false if it renewed its lease meanwhile.
    pub async fn remove_lapsed_node(&self, node_id: &str) -> Result<bool, DbError> {
        let now = self.db.now_millis_sql();
        let removed =
            sqlx::query(&format!("DELETE FROM cluster_nodes WHERE node_id = $1 AND lease_until < {now}"))
                .bind(node_id)
                .execute(self.db.pool())
                .await?;
        Ok(removed.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tests::test_urls;
    use crate::db::Database;

    #[tokio::test]
    async fn a_node_whose_lease_lapses_is_seen_dead_by_the_others_and_can_be_removed_once() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            let db = Database::connect(&url).await.unwrap();
            let a = Store::new(db.clone()).await.unwrap().for_node(&format!("a-{suffix}"));
            let b = Store::new(db).await.unwrap().for_node(&format!("b-{suffix}"));
            a.register_node("all", "http://a", 60_000).await.unwrap();
            // b's lease is already over when it is written.
            b.register_node("all", "http://b", -1).await.unwrap();
            let lapsed = a.lapsed_nodes().await.unwrap();
            assert!(lapsed.contains(&b.node_id().to_owned()), "{url}: {lapsed:?}");
            assert!(!a.holds_lease(b.node_id()).await.unwrap(), "{url}: a lapsed lease is not held");
            assert!(a.holds_lease(a.node_id()).await.unwrap(), "{url}: a live lease is held");
            assert!(!lapsed.contains(&a.node_id().to_owned()), "{url}");
            assert!(
                !b.lapsed_nodes().await.unwrap().contains(&b.node_id().to_owned()),
                "a node never reaps itself"
            );

            assert!(a.remove_lapsed_node(b.node_id()).await.unwrap(), "{url}");
            assert!(!a.remove_lapsed_node(b.node_id()).await.unwrap(), "{url}: removed twice");
            assert!(!a.holds_lease(b.node_id()).await.unwrap(), "{url}: a removed node holds no lease");
            assert!(!b.renew_lease(3, 0, 3_000).await.unwrap(), "{url}: a removed node learns it on renewal");
            assert!(
                !a.remove_lapsed_node(a.node_id()).await.unwrap(),
                "{url}: a live lease is never removed"
            );
            assert!(a.renew_lease(7, 42, 60_000).await.unwrap());
            let load: (i64, i64) =
                sqlx::query_as("SELECT legs, cpu_percent FROM cluster_nodes WHERE node_id = $1")
                    .bind(a.node_id())
                    .fetch_one(a.db().pool())
                    .await
                    .unwrap();
            let http_url = a.node_http_url(a.node_id()).await.unwrap();
            assert_eq!((load, http_url.as_deref()), ((7, 42), Some("http://a")), "{url}");
            let loads = a.live_node_loads().await.unwrap();
            assert!(loads.contains(&(a.node_id().to_owned(), 0)), "{url}: {loads:?}");
            assert!(!loads.iter().any(|(n, _)| n == b.node_id()), "{url}: a removed node has no load");
            b.register_node("control", "http://b", 60_000).await.unwrap();
            let loads = a.live_node_loads().await.unwrap();
            assert!(!loads.iter().any(|(n, _)| n == b.node_id()), "{url}: a control node carries no calls");
            b.deregister_node().await.unwrap();
            a.deregister_node().await.unwrap();
        }
    }
}
