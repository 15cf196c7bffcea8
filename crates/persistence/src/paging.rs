//! Keyset pages (`… ORDER BY id DESC LIMIT n`) as statements PostgreSQL
//! keeps one plan for.
//!
//! PostgreSQL plans a prepared statement afresh on every execution while
//! the plan it could keep (a generic one, which knows no parameter value)
//! looks costlier than the plans it made for the values at hand. A LIMIT
//! that is a parameter looks like a tenth of the table, so every page of a
//! list was planned again on each request (`pg_prepared_statements` showed
//! no generic plan, only custom ones), about a third of the database's
//! work for the list path. With the limit written into the text, each page
//! size is a statement of its own whose plan is kept; page sizes are
//! bounded (1 to 200, plus one), and so is the number of such statements.

use sea_orm::sea_query::Value;
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QuerySelect, QueryTrait, Select, Statement,
};

/// Runs `query` (already filtered and ordered) for at most `limit` rows,
/// with the limit in the SQL.
pub(crate) async fn page<E, C>(db: &C, query: Select<E>, limit: u64) -> Result<Vec<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let statement = with_literal_limit(query.limit(limit), db.get_database_backend());
    E::find().from_raw_sql(statement).all(db).await
}

/// `query` built for `backend` with a trailing bound LIMIT turned into a
/// literal; anything else is left as it was built.
fn with_literal_limit<E: EntityTrait>(query: Select<E>, backend: DbBackend) -> Statement {
    let mut statement = query.build(backend);
    let Some(values) = statement.values.as_mut() else {
        return statement;
    };
    let placeholder = match backend {
        DbBackend::Postgres => format!(" LIMIT ${}", values.0.len()),
        _ => " LIMIT ?".to_owned(),
    };
    if statement.sql.ends_with(&placeholder)
        && let Some(Value::BigUnsigned(Some(limit))) = values.0.last()
    {
        let literal = format!(" LIMIT {limit}");
        values.0.pop();
        statement
            .sql
            .truncate(statement.sql.len() - placeholder.len());
        statement.sql.push_str(&literal);
    }
    statement
}

#[cfg(test)]
mod tests {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};

    use super::*;
    use crate::entities::environments::{Column, Entity};

    fn a_page() -> Select<Entity> {
        Entity::find()
            .filter(Column::Id.lt(900))
            .order_by_desc(Column::Id)
            .limit(51)
    }

    #[test]
    fn the_limit_is_written_into_the_sql_on_both_databases() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let statement = with_literal_limit(a_page(), backend);
            assert!(
                statement
                    .sql
                    .ends_with(r#"ORDER BY "environments"."id" DESC LIMIT 51"#),
                "{backend:?}: {}",
                statement.sql
            );
            let values = statement.values.expect("the id filter is bound").0;
            assert_eq!(values, vec![Value::Int(Some(900))], "{backend:?}");
        }
    }

    #[test]
    fn a_statement_without_a_bound_limit_is_left_alone() {
        let query = Entity::find().filter(Column::Id.lt(900));
        let built = query.clone().build(DbBackend::Postgres);
        assert_eq!(with_literal_limit(query, DbBackend::Postgres), built);
    }
}
