//! Reading subscribers in id order for exports.

use super::subscriber_admin::Filter;
use super::subscribers::{COLUMNS, Subscriber};
use super::{Db, StoreError};
use crate::with_pool;

/// Up to `limit` subscribers with ids above `after`, in id order, that `filter` selects.
#[tracing::instrument(skip(db))]
pub async fn page(
    db: &Db,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<Vec<Subscriber>, StoreError> {
    Ok(with_pool!(db, read, |pool| {
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM subscribers WHERE id > "));
        query.push_bind(after);
        super::subscriber_admin::push_filter(&mut query, filter);
        query.push(" ORDER BY id LIMIT ").push_bind(limit);
        query.build_query_as().fetch_all(pool).await
    })?)
}
