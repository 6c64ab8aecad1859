//! A fresh store per test, and raw SQL for the tests that need to look underneath.

use atmls_ds_postgres::{PgConfig, PgStore, SchemaName};

/// The test database's URL; panics (fails the test) when it is not set.
pub(crate) fn url() -> String {
    atmls_testkit::database::database_url()
}

/// A schema name no other test (in this or another process) uses.
pub(crate) fn fresh_schema() -> SchemaName {
    atmls_testkit::database::fresh_schema_name("t")
        .parse()
        .expect("valid schema name")
}

/// A store in `schema`, with its own pool (as another process would have).
pub(crate) fn store_in(schema: &SchemaName) -> PgStore {
    let config = PgConfig::new(&url())
        .expect("valid URL")
        .with_schema(schema.clone())
        .with_pool_size(2);
    PgStore::connect(&config).expect("connect to the test database")
}

/// A store in a fresh schema.
pub(crate) fn store() -> PgStore {
    store_in(&fresh_schema())
}

/// Runs `sql` (several statements) in `schema` on a connection of its own.
pub(crate) fn sql(schema: &SchemaName, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut config: tokio_postgres::Config = url().parse().expect("valid URL");
        config.options(format!("-c search_path={}", schema.as_str()));
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        let conn = tokio::spawn(conn);
        client.batch_execute(sql).await.expect("SQL runs");
        drop(client);
        let _ = conn.await;
    });
}

/// The first column of the first row of `query` in `schema`, as an integer.
pub(crate) fn count(schema: &SchemaName, query: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut config: tokio_postgres::Config = url().parse().expect("valid URL");
        config.options(format!("-c search_path={}", schema.as_str()));
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        let conn = tokio::spawn(conn);
        let n: i64 = client.query_one(query, &[]).await.expect("query").get(0);
        drop(client);
        let _ = conn.await;
        n
    })
}
